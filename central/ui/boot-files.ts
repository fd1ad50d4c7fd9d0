import type { Machine } from '../../shared/api/resources.js';
import { BUILTIN_DISCOVERY, BUILTIN_LOCAL } from '../../shared/bootenv/builtin.js';
import { parseBootEnv, type BootEnv } from '../../shared/bootenv/schema.js';
import { paramValues, redactSecrets } from '../../shared/params/resolve.js';
import { BootRenderer } from '../../shared/render/bootfiles.js';
import type { RenderContext } from '../../shared/render/context.js';
import type { ApiDeps } from '../api/deps.js';
import { resolveMachineParams } from '../machines/params-routes.js';

/** What stands in a preview for the secret values, the boot token and the agent's address. */
export const MASK = '********';
export const PREVIEW_TOKEN = 'PREVIEW-boot-token';
export const PREVIEW_AGENT = 'http://site-agent.invalid:8080';

export interface BootFilePreview {
  bootenv: string | null;
  files: { path: string; text?: string; error?: string }[];
}

/**
 * A machine's boot files as its site agent would render them (the iPXE script and every per-machine
 * file of its boot environment), for the console: secret params masked, a placeholder boot token and
 * agent URL (the real ones exist only on the agent at boot time). A file that would not be served says why.
 */
export function previewBootFiles(deps: ApiDeps, m: Machine): BootFilePreview {
  // Secret params, and any value still sealed (a BMC password param without a secret definition), masked.
  const params = Object.fromEntries(Object.entries(paramValues(redactSecrets(resolveMachineParams(deps, m), MASK))).map(([k, v]) => [k, v && typeof v === 'object' && '$sealed' in v ? MASK : v]));
  const envDoc = deps.store.findUnique<BootEnv & { id: string }>('bootenvs', 'name', m.bootenv);
  const bootenv = envDoc ? parseBootEnv(stripStamps(envDoc)) : m.bootenv === 'discovery' ? BUILTIN_DISCOVERY : m.bootenv === 'local' ? BUILTIN_LOCAL : undefined;
  const discoveryDoc = deps.store.findUnique<BootEnv & { id: string }>('bootenvs', 'name', 'discovery');
  const snippets = Object.fromEntries(deps.store.list<{ id: string; name: string; text: string }>('templates').items.map((t) => [t.name, t.text]));
  const ctx: RenderContext = {
    machine: { id: m.id, name: m.name, macs: m.macs, ...(m.address ? { address: m.address } : {}), known: true, netboot: (m as { netboot?: boolean }).netboot ?? true },
    site: { name: m.site },
    params,
    ...(bootenv ? { bootenv } : {}),
    ...(discoveryDoc ? { discovery: parseBootEnv(stripStamps(discoveryDoc)) } : {}),
    // The key the machine's runner pins is the central's task-signing key (public).
    agent: { httpUrl: PREVIEW_AGENT, tftpAddress: 'site-agent.invalid', ...(/^[A-Za-z0-9+/]{43}=$/.test(deps.central.signingPublicKey) ? { pubkey: deps.central.signingPublicKey } : {}) },
    token: PREVIEW_TOKEN,
    urls: { files: (p) => p, machineBase: `${PREVIEW_AGENT}/m/${PREVIEW_TOKEN}`, done: `${PREVIEW_AGENT}/m/${PREVIEW_TOKEN}/done` },
    snippets,
  };
  const p = new BootRenderer({ snippets }).preview(ctx);
  const one = (path: string, r: { ok: true; value: string } | { ok: false; error: Error }) => (r.ok ? { path, text: r.value } : { path, error: r.error.message });
  return {
    bootenv: p.bootenv,
    files: [one('boot.ipxe', p.ipxe), ...p.files.map((f) => one(f.path, f.result.ok ? { ok: true as const, value: f.result.value.body } : f.result))],
  };
}

function stripStamps<T extends { id: string }>(doc: T): Omit<T, 'id' | 'createdAt' | 'updatedAt'> {
  const { id: _i, createdAt: _c, updatedAt: _u, ...rest } = doc as T & { createdAt?: string; updatedAt?: string };
  return rest;
}
