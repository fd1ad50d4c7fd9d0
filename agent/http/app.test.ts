import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesiredState } from '../../shared/protocol/desired-state.js';
import { bootUrls } from '../boot/urls.js';
import { AGENT_URL, bootRuntime, machine, siteState, tokenIn } from './boot-http.test-support.js';

/** The agent's HTTP boot surface, in process, over a real durable runtime in a temp dir. */
describe('agent HTTP boot surface', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-http-'));
  const KNOWN = '52:54:00:00:00:0a';
  const LOCAL = '52:54:00:00:00:0b';
  const UNKNOWN = '52:54:00:00:00:0c';
  const BROKEN = '52:54:00:00:00:0d';
  let rt: Awaited<ReturnType<typeof bootRuntime>>;
  const STATE = siteState(
        [
          machine('m-known', 'web-01', KNOWN),
          machine('m-local', 'db-01', LOCAL, { state: 'deployed', netboot: false }),
          machine('m-broken', 'broken-01', BROKEN, { bootenv: 'needs-secret', params: { root_password: 'hunter2-VALUE' } }),
        ],
        {
          bootenvs: [
            {
              name: 'needs-secret',
              kernel: { url: 'discovery/vmlinuz' },
              bootParams: 'console=ttyS0',
              requiredParams: ['install_disk'],
              templates: [{ name: 'user-data', path: 'user-data', template: '#cloud-config\npassword: {{ params.root_password }}\n{% bogus %}', validate: 'none' }],
            },
          ],
        },
      );

  beforeAll(async () => {
    rt = await bootRuntime(dir, {
      // Every request here comes from one in-process "address": allow more claims per MAC than a real boot needs.
      rates: { claim: { mac: { burst: 50, perSec: 1 }, source: { burst: 100, perSec: 10 } } },
      state: STATE,
    });
    writeFileSync(join(dir, 'secret.txt'), 'top secret');
    symlinkSync('/etc/passwd', join(rt.bootDir, 'passwd'));
    symlinkSync(join(dir, 'secret.txt'), join(rt.bootDir, 'discovery', 'secret'));
    symlinkSync(join(rt.bootDir, 'discovery', 'vmlinuz'), join(rt.bootDir, 'kernel-link'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const script = async (mac: string, platform = 'pcbios') => (await rt.app.request(`/ipxe/script?mac=${mac}&platform=${platform}&buildarch=x86_64`)).text();
  const claim = async (mac: string) => {
    const res = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token: tokenIn(await script(mac)) }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { session: string; machine: string; mac: string; seqFloor: number; agent: string };
  };
  const bearer = (s: string) => ({ authorization: `Bearer ${s}` });

  it('shows the outbox depth (the gauge) in /healthz', async () => {
    const before = rt.outbox.depth();
    await rt.outbox.add({ type: 'event', id: 'gauge-test', kind: 'test', data: {}, at: new Date(0).toISOString() });
    const h = (await (await rt.app.request('/healthz')).json()) as { status: string; outbox: { records: number; bytes: number; maxRecords: number; full: boolean } };
    expect(h.status).toBe('ok');
    expect(h.outbox).toMatchObject({ records: before.records + 1, maxRecords: before.maxRecords, full: false });
    expect(h.outbox.bytes).toBeGreaterThan(before.bytes);
  });

  it('chains every iPXE client to its per-machine script', async () => {
    // The entry script DHCP hands to iPXE clients (agent/boot/listeners.ts) is the one this surface serves.
    const res = await rt.app.request(new URL(bootUrls(AGENT_URL).entryScript).pathname);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(`chain ${AGENT_URL}/ipxe/script?mac=\${mac}&uuid=\${uuid}&buildarch=\${buildarch}&platform=\${platform}`);
  });

  it('a machine the central learns while its boot token is being written gets a token naming the machine the script names', async () => {
    const LATE = '52:54:00:00:00:1e';
    const mint = rt.sessions.mint.bind(rt.sessions);
    let swapped = false;
    // The desired state arrives (the central registered the MAC) while the first token is written.
    rt.sessions.mint = async (mac, machineId) => {
      const token = await mint(mac, machineId);
      if (!swapped) {
        swapped = true;
        await rt.cache.replace(DesiredState.parse({ ...STATE, machines: [...STATE.machines, machine('m-late', 'late-01', LATE)] }));
      }
      return token;
    };
    try {
      const text = await script(LATE);
      expect(text).toContain('underlay.machine=m-late');
      const res = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token: tokenIn(text) }) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { machine: string }).machine).toBe('m-late'); // not the id the MAC had a moment before
    } finally {
      rt.sessions.mint = mint;
      await rt.cache.replace(DesiredState.parse(STATE));
    }
  });

  it('boots an unknown machine into discovery with a fresh random boot token and the id the agent proposes', async () => {
    const a = await script(UNKNOWN);
    const b = await script(UNKNOWN);
    expect(tokenIn(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenIn(a)).not.toBe(tokenIn(b));
    expect(tokenIn(a)).not.toContain(UNKNOWN.replace(/:/g, '').slice(0, 6));
    expect(a).toContain(`underlay.machine=${rt.ids.proposed(UNKNOWN)}`);
    expect(a).toContain(`kernel ${AGENT_URL}/files/discovery/vmlinuz`);
  });

  it('boots a known machine with netboot disallowed from its disk (BIOS and UEFI)', async () => {
    expect(await script(LOCAL)).toContain('sanboot --no-describe --drive 0x80');
    const efi = await script(LOCAL, 'efi');
    expect(efi).toContain('exit');
    expect(efi).not.toContain('sanboot');
  });

  it('rejects a request without a valid MAC', async () => {
    expect((await rt.app.request('/ipxe/script?mac=nope')).status).toBe(400);
  });

  it('serves boot files with Range and refuses traversal and symlinks out of the boot directory', async () => {
    const part = await rt.app.request('/files/discovery/vmlinuz', { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(Buffer.alloc(10, 7));
    for (const p of ['/files/../secret.txt', '/files/%2e%2e/secret.txt', '/files/discovery/%2e%2e/%2e%2e/secret.txt', '/files/passwd', '/files/discovery/secret', '/files/%70asswd']) {
      for (const headers of [{}, { range: 'bytes=0-3' }]) {
        const r = await rt.app.request(p, { headers });
        expect([400, 404]).toContain(r.status);
        const text = await r.text();
        expect(text).not.toContain('top secret');
        expect(text).not.toContain('root:');
      }
    }
    // A symlink between files inside the boot directory is fine.
    expect((await rt.app.request('/files/kernel-link')).status).toBe(200);
  });

  it('never serves dot-files (an artifact still downloading is .partial-<sha256>)', async () => {
    mkdirSync(join(rt.bootDir, 'sha256'), { recursive: true });
    writeFileSync(join(rt.bootDir, 'sha256', `.partial-${'a'.repeat(64)}`), 'half an image');
    for (const headers of [{}, { range: 'bytes=0-3' }]) {
      const r = await rt.app.request(`/files/sha256/.partial-${'a'.repeat(64)}`, { headers });
      expect(r.status).toBe(404);
      expect(await r.text()).not.toContain('half');
    }
  });

  it('claims a boot token once: the session comes back with the machine, the replay floor and the agent id', async () => {
    const token = tokenIn(await script(KNOWN));
    const first = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token }) });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ session: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), machine: 'm-known', mac: KNOWN, seqFloor: 0, agent: 'a1' });
    const again = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token }) });
    expect(again.status).toBe(409);
    expect(rt.events('boot-claim-refused').at(-1)?.data).toMatchObject({ machineId: 'm-known', mac: KNOWN, via: 'explicit' });
    expect((await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token: 'A'.repeat(43) }) })).status).toBe(403);
    expect((await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: 'x'.repeat(2000) })).status).toBe(413);
    expect((await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: '{"token": 5}' })).status).toBe(400);
  });

  it('accepts discovery only with a session, validated against HardwareFacts, ≤ 256 KiB, durably', async () => {
    expect((await rt.app.request('/api/v1/discovery', { method: 'POST', body: '{}' })).status).toBe(401);
    expect((await rt.app.request('/api/v1/discovery', { method: 'POST', body: '{}', headers: bearer('A'.repeat(43)) })).status).toBe(401);
    const s = await claim(UNKNOWN);
    const auth = bearer(s.session);
    const before = rt.outbox.size;
    expect((await rt.app.request('/api/v1/discovery', { method: 'POST', body: 'not json', headers: auth })).status).toBe(400);
    expect((await rt.app.request('/api/v1/discovery', { method: 'POST', body: JSON.stringify({ cpu: { threads: 'many' } }), headers: auth })).status).toBe(400);
    const huge = await rt.app.request('/api/v1/discovery', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }), headers: auth });
    expect(huge.status).toBe(413);
    // Deep nesting is refused before parsing (it would overflow JSON.stringify in the outbox and the link).
    const deep = await rt.app.request('/api/v1/discovery', { method: 'POST', body: `{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, headers: auth });
    expect(deep.status).toBe(400);
    expect(rt.outbox.size).toBe(before);
    const ok = await rt.app.request('/api/v1/discovery', { method: 'POST', body: JSON.stringify({ cpu: { threads: 2 } }), headers: auth });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ accepted: true, machine: rt.ids.proposed(UNKNOWN) });
    expect(rt.outbox.size).toBe(before + 1);
    const ev = rt.events('discovery').at(-1)!;
    expect(ev.data).toMatchObject({ mac: UNKNOWN, facts: { cpu: { threads: 2 } } });
  });

  it('hands a session only its machine’s tasks, and takes a report only from the session it was handed to', async () => {
    const env = await rt.queueTask('m-known');
    const other = await claim(UNKNOWN);
    expect((await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(other.session) })).status).toBe(204);
    const mine = await claim(KNOWN);
    const got = await rt.app.request('/api/v1/runner/next?wait=0', { headers: bearer(mine.session) });
    expect(got.status).toBe(200);
    expect(((await got.json()) as { canonical: string }).canonical).toBeTruthy();
    const wrong = await rt.app.request(`/api/v1/runner/tasks/${env.id}/events`, { method: 'POST', body: JSON.stringify({ state: 'succeeded' }), headers: bearer(other.session) });
    expect(wrong.status).toBe(404);
    expect(rt.reports(env.id).map((r) => r.state)).toEqual(['accepted']);
    const done = await rt.app.request(`/api/v1/runner/tasks/${env.id}/events`, { method: 'POST', body: JSON.stringify({ state: 'succeeded', output: 'hi\n', exitCode: 0 }), headers: bearer(mine.session) });
    expect(done.status).toBe(200);
    expect(rt.reports(env.id).at(-1)).toMatchObject({ type: 'report', taskId: env.id, state: 'succeeded', output: 'hi\n', exitCode: 0 });
    expect(rt.queue.get(env.id)).toBeUndefined();
    // The next boot of this machine learns the replay floor.
    expect((await claim(KNOWN)).seqFloor).toBe(1);
  });

  it('flips a machine to local boot when its install reports success (reinstall-loop guard), only with its session', async () => {
    const unknown = tokenIn(await script(UNKNOWN));
    expect((await rt.app.request(`/m/${unknown}/done`, { method: 'POST' })).status).toBe(404);
    expect((await rt.app.request(`/m/${'A'.repeat(43)}/done`, { method: 'POST' })).status).toBe(403);
    const s = await claim(KNOWN);
    const token = tokenIn(await script(KNOWN));
    // Another session's credential is no good for this token.
    expect((await rt.app.request(`/m/${token}/done`, { method: 'POST', headers: bearer(s.session) })).status).toBe(403);
    const res = await rt.app.request(`/m/${token}/done`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(rt.cache.machineByMac(KNOWN)).toMatchObject({ netboot: false, bootenv: 'local' });
    expect(await script(KNOWN)).toContain('sanboot --no-describe --drive 0x80');
    expect(rt.events('install-done').at(-1)?.data).toMatchObject({ machineId: 'm-known' });
  });

  it('refuses per-machine files for a forged or unknown token', async () => {
    expect((await rt.app.request(`/m/${UNKNOWN.replace(/:/g, '')}-${'B'.repeat(32)}/user-data`)).status).toBe(403);
    expect((await rt.app.request(`/m/${'B'.repeat(43)}/user-data`)).status).toBe(403);
  });

  it('answers a render error with a generic message and an id, never the reason or a param value', async () => {
    // The script needs a param the machine lacks (install_disk): the agent must not say which, nor any value.
    const res = await rt.app.request(`/ipxe/script?mac=${BROKEN}`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text).error).toMatchObject({ code: 'render_error', message: expect.stringMatching(/^render error \(id [0-9a-f]{12}\)/) });
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('install_disk');
    const ev = rt.events('render-error').at(-1)!;
    expect(ev.data.errorId).toBe(/id ([0-9a-f]{12})/.exec(text)![1]);
    expect(JSON.stringify(ev.data)).not.toContain('hunter2');
  });

  it('answers every refusal with the one JSON error body: unknown path, missing file or binary, bad path, bad MAC', async () => {
    const cases: [string, number, string][] = [
      ['/no/such/path', 404, 'not_found'],
      ['/files/nope.img', 404, 'not_found'],
      ['/ipxe/evil.efi', 404, 'not_found'],
      ['/files/%E0%A4%A', 400, 'invalid_request'],
      ['/ipxe/script?mac=nope', 400, 'invalid_request'],
      ['/api/v1/runner/next', 401, 'unauthenticated'],
    ];
    for (const [path, status, code] of cases) {
      const res = await rt.app.request(path);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe(code);
    }
  });

  it('relays service health for a machine’s own members through the outbox, only with a session', async () => {
    const path = '/api/v1/services/etcd/members/etcd-1-2379';
    expect((await rt.app.request(`${path}/pass`, { method: 'PUT' })).status).toBe(401);
    const auth = bearer((await claim(UNKNOWN)).session);
    expect((await rt.app.request(`${path}/maybe`, { method: 'PUT', headers: auth })).status).toBe(404);
    expect((await rt.app.request(`${path}/warn`, { method: 'PUT', headers: auth, body: '{"note":5}' })).status).toBe(400);
    expect((await rt.app.request(`${path}/warn`, { method: 'PUT', headers: auth, body: 'x'.repeat(9000) })).status).toBe(413);
    const res = await rt.app.request(`${path}/warn`, { method: 'PUT', headers: auth, body: '{"note":"disk 91%"}' });
    expect(res.status).toBe(202);
    expect(rt.events('service-status').at(-1)?.data).toEqual({ service: 'etcd', member: 'etcd-1-2379', status: 'warning', machineId: rt.ids.proposed(UNKNOWN), note: 'disk 91%' });
  });
});

describe('agent HTTP boot surface under pressure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-http-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const MAC = '52:54:00:00:01:0a';

  it('rate limits script minting per MAC with 429 and Retry-After; other MACs still boot', async () => {
    const rt = await bootRuntime(dir, { state: siteState([]), rates: { script: { mac: { burst: 2, perSec: 0.1 }, source: { burst: 100, perSec: 100 } } } });
    const get = (mac: string) => rt.app.request(`/ipxe/script?mac=${mac}`);
    expect((await get(MAC)).status).toBe(200);
    expect((await get(MAC)).status).toBe(200);
    const limited = await get(MAC);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await get('52:54:00:00:01:0b')).status).toBe(200);
  });

  it('answers 503 with Retry-After when the outbox refuses (full or disk full), and keeps serving', async () => {
    let full = false;
    const rt = await bootRuntime(join(dir, 'b'), {
      state: siteState([]),
      emitEvent: async () => {
        if (full) throw Object.assign(new Error('outbox full'), { code: 'ENOSPC' });
      },
    });
    const token = tokenIn(await (await rt.app.request(`/ipxe/script?mac=${MAC}`)).text());
    const claim = await rt.app.request('/api/v1/boot/claim', { method: 'POST', body: JSON.stringify({ token }) });
    const { session } = (await claim.json()) as { session: string };
    full = true;
    const res = await rt.app.request('/api/v1/discovery', { method: 'POST', body: '{"cpu":{"threads":1}}', headers: { authorization: `Bearer ${session}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('30');
    full = false;
    expect((await rt.app.request('/api/v1/discovery', { method: 'POST', body: '{"cpu":{"threads":1}}', headers: { authorization: `Bearer ${session}` } })).status).toBe(202);
  });
});
