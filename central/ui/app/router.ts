import { useEffect, useState } from 'preact/hooks';

/** Client-side paths under /ui (the central answers every /ui/* path with the page). */
export const BASE = '/ui';

export function navigate(path: string): void {
  history.pushState(null, '', `${BASE}${path}`);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The current path below /ui ("/machines/m_1"), re-rendering on navigation. */
export function usePath(): string {
  const read = () => location.pathname.slice(BASE.length) || '/';
  const [path, setPath] = useState(read);
  useEffect(() => {
    const on = () => setPath(read());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path;
}

/** An in-app link: a real <a href> (keyboard, middle-click, copy link) that navigates without a reload. */
export function onLink(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement);
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href')!.slice(BASE.length));
}
