/**
 * The four Reflect metadata functions tsyringe (a dependency of @peculiar/x509) checks for at import.
 * @peculiar/x509 registers its providers by token and never reads constructor parameter types, so a
 * plain WeakMap store is all it needs; this spares a `reflect-metadata` dependency. Import this module
 * before `@peculiar/x509` (x509.ts does).
 */
type Target = object;
const store = new WeakMap<Target, Map<string | symbol, Map<unknown, unknown>>>();
const R = Reflect as unknown as Record<string, unknown>;

function own(target: Target, prop: string | symbol | undefined, create: boolean): Map<unknown, unknown> | undefined {
  let byProp = store.get(target);
  if (!byProp && create) store.set(target, (byProp = new Map()));
  const key = prop ?? '';
  let m = byProp?.get(key);
  if (!m && create && byProp) byProp.set(key, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (k: unknown, v: unknown, target: Target, prop?: string | symbol) => void own(target, prop, true)!.set(k, v);
  R.getOwnMetadata = (k: unknown, target: Target, prop?: string | symbol) => own(target, prop, false)?.get(k);
  R.getMetadata = (k: unknown, target: Target, prop?: string | symbol): unknown => {
    for (let t: Target | null = target; t; t = Object.getPrototypeOf(t)) {
      const v = own(t, prop, false)?.get(k);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  R.hasMetadata = (k: unknown, target: Target, prop?: string | symbol) => (R.getMetadata as (...a: unknown[]) => unknown)(k, target, prop) !== undefined;
}
export {};
