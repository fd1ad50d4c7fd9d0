import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Api, ChangeNote, Me } from './api.js';

export interface Session {
  api: Api;
  me: Me;
  /** Subscribe to live changes (the one stream of the session); returns the unsubscribe. */
  onChange: (fn: (c: ChangeNote) => void) => () => void;
}
export const SessionContext = createContext<Session | null>(null);
export function useSession(): Session {
  return useContext(SessionContext)!;
}

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads `path` from the API and loads it again when `deps` change or when a live change to one of
 * `collections` arrives (at most every 500 ms while changes keep coming: a burst costs one request).
 */
export function useApi<T>(path: string | undefined, collections: string[] = [], filter?: (c: ChangeNote) => boolean): Loaded<T> {
  const { api, onChange } = useSession();
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const filterRef = useRef(filter);
  filterRef.current = filter;
  useEffect(() => {
    if (!path) return;
    let stale = false;
    setState((s) => ({ ...s, loading: true }));
    api.get<T>(path).then(
      (data) => !stale && setState({ data, loading: false }),
      (e: Error) => !stale && setState({ error: e.message, loading: false }),
    );
    return () => {
      stale = true;
    };
  }, [path, tick]);
  useEffect(() => {
    if (collections.length === 0) return;
    const off = onChange((c) => {
      if (!collections.includes(c.collection) || (filterRef.current && !filterRef.current(c))) return;
      if (timer.current) return;
      timer.current = setTimeout(() => {
        timer.current = undefined;
        setTick((t) => t + 1);
      }, 500);
    });
    return () => {
      off();
      clearTimeout(timer.current);
      timer.current = undefined;
    };
  }, [collections.join(',')]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}
