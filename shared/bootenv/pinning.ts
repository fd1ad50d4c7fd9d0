import type { BootEnv } from './schema.js';

/** An upstream (http/https) kernel or initrd URL a boot environment names without a sha256. */
export interface UnpinnedUrl {
  /** `kernel.url`, `initrds.0.url`, … */
  field: string;
  url: string;
}

const upstream = (u: string) => /^https?:\/\//i.test(u);

/** Every upstream artifact URL of `env` that pins no sha256 (relative boot-dir paths are the agent's own files). */
export function unpinnedUrls(env: { kernel?: BootEnv['kernel']; initrds?: BootEnv['initrds'] }): UnpinnedUrl[] {
  const out: UnpinnedUrl[] = [];
  if (env.kernel && upstream(env.kernel.url) && !env.kernel.sha256) out.push({ field: 'kernel.url', url: env.kernel.url });
  (env.initrds ?? []).forEach((i, n) => {
    if (upstream(i.url) && !i.sha256) out.push({ field: `initrds.${n}.url`, url: i.url });
  });
  return out;
}

/** Writing or serving an upstream URL with no sha256, without the operator's --allow-unpinned. */
export class UnpinnedUrlError extends Error {
  override readonly name = 'UnpinnedUrlError';
  constructor(
    readonly bootenv: string,
    readonly urls: UnpinnedUrl[],
  ) {
    super(
      `boot environment ${bootenv} names ${urls.map((u) => `${u.url} (${u.field})`).join(', ')} with no sha256: ` +
        `pin it (set ${urls.map((u) => u.field.replace(/url$/, 'sha256')).join(', ')}) or pass --allow-unpinned`,
    );
  }
}

/** Throws `UnpinnedUrlError` naming every unpinned upstream URL, unless the operator allowed them. */
export function requirePinned(env: { name: string; kernel?: BootEnv['kernel']; initrds?: BootEnv['initrds'] }, allowUnpinned: boolean): void {
  const urls = unpinnedUrls(env);
  if (urls.length && !allowUnpinned) throw new UnpinnedUrlError(env.name, urls);
}
