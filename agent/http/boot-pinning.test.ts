import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootRuntime, machine, siteState } from './boot-http.test-support.js';

/** The agent never sends a machine to an upstream URL that pins no sha256 unless the operator allowed it. */
const SHA = 'a'.repeat(64);
const HELD = 'b'.repeat(64);
const PINNED = '52:54:00:00:01:01';
const LOOSE = '52:54:00:00:01:02';
const FETCHED = '52:54:00:00:01:03';
const state = siteState(
  [machine('m1', 'pinned', PINNED, { bootenv: 'pinned' }), machine('m2', 'loose', LOOSE, { bootenv: 'loose' }), machine('m3', 'fetched', FETCHED, { bootenv: 'fetched' })],
  {
    bootenvs: [
      { name: 'pinned', os: { family: 't' }, kernel: { url: 'https://up.example/pinned/vmlinuz', sha256: SHA }, bootParams: '' },
      { name: 'loose', os: { family: 't' }, kernel: { url: 'https://up.example/loose/vmlinuz' }, initrds: [{ url: 'https://up.example/loose/initrd', sha256: SHA }], bootParams: '' },
      { name: 'fetched', os: { family: 't' }, kernel: { url: 'https://up.example/fetched/vmlinuz' }, bootParams: '' },
    ],
  },
);
const localArtifact = (u: string) => (u === 'https://up.example/fetched/vmlinuz' ? `sha256/${HELD}` : undefined);

describe('agent boot scripts and unpinned upstream URLs', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const runtime = async (allowUnpinned: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'underlay-pinning-'));
    dirs.push(dir);
    return bootRuntime(dir, { state, localArtifact, allowUnpinned });
  };
  const script = (rt: Awaited<ReturnType<typeof bootRuntime>>, mac: string) => rt.app.request(`/ipxe/script?mac=${mac}&platform=pcbios&buildarch=x86_64`);

  it('refuses a script naming an unpinned upstream URL it does not hold, and reports the URL', async () => {
    const rt = await runtime(false);
    const res = await script(rt, LOOSE);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('kernel https://');
    const ev = rt.events('render-error').at(-1)!;
    expect(ev.data).toMatchObject({ kind: 'UnpinnedUrlError', bootenv: 'loose', unpinned: ['https://up.example/loose/vmlinuz'] });
    expect(String(ev.data.reason)).toMatch(/--allow-unpinned/);
  });

  it('serves pinned upstream URLs, and unpinned ones it holds a verified copy of', async () => {
    const rt = await runtime(false);
    const pinned = await script(rt, PINNED);
    expect(pinned.status).toBe(200);
    expect(await pinned.text()).toContain('kernel https://up.example/pinned/vmlinuz');
    const fetched = await script(rt, FETCHED);
    expect(fetched.status).toBe(200);
    expect(await fetched.text()).toContain(`/files/sha256/${HELD}`);
  });

  it('with --allow-unpinned the operator takes the upstream as it is', async () => {
    const rt = await runtime(true);
    const res = await script(rt, LOOSE);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('kernel https://up.example/loose/vmlinuz');
  });
});
