import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageRef } from '../../shared/api/images.js';
import { CLI, cleanEnv, freePort, HOST_AGENT_ENV, killAllCentrals, runCli, sleep, spawnCentral, tempDir, type CentralProcess } from '../central/support.js';
import { httpGet } from '../support/http-get.js';

/**
 * Images are content-addressed artifacts: `underlay images push` records a disk image (raw, qcow2,
 * zstd, xz) with the hash of the raw disk it decompresses to; a real agent pulls it over mTLS and serves
 * it with Range; the discovery image reaches the agent the same way, with nothing copied by hand.
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');


describe('images as artifacts: push, list, sync to an agent, serve with Range; the discovery image distributed', () => {
  let central: CentralProcess;
  let env: Record<string, string>;
  let agent: ChildProcess | undefined;
  const dir = tempDir('underlay-images-');
  // A small "disk": a random head and a zero tail, like a real sparse image.
  const raw = Buffer.concat([randomBytes(700 * 1024), Buffer.alloc(1348 * 1024)]);
  const rawFile = join(dir, 'disk.raw');
  const zstFile = join(dir, 'disk.raw.zst');
  const xzFile = join(dir, 'disk.raw.xz');
  const qcowFile = join(dir, 'disk.qcow2');
  const qcowRaw = Buffer.concat([randomBytes(64 * 1024), Buffer.alloc(960 * 1024)]);
  const qcowRawFile = join(dir, 'qcow-source.raw');
  const kernel = randomBytes(256 * 1024 + 3);
  const initrd = randomBytes(512 * 1024 + 9);
  const discoveryDir = join(dir, 'discovery-build');
  const bootDir = join(dir, 'boot');

  beforeAll(async () => {
    writeFileSync(rawFile, raw);
    execFileSync('zstd', ['-q', '-3', rawFile, '-o', zstFile]);
    writeFileSync(xzFile, execFileSync('xz', ['-T1', '-c', rawFile], { maxBuffer: 1 << 26 }));
    // A different disk for qcow2: converted and zstd'ed it would otherwise be tiny-zst's very bytes.
    writeFileSync(qcowRawFile, qcowRaw);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', qcowRawFile, qcowFile]);
    // A fake discovery build (same layout and manifest as scripts/images/build-discovery.sh's output).
    mkdirSync(discoveryDir);
    writeFileSync(join(discoveryDir, 'vmlinuz'), kernel);
    writeFileSync(join(discoveryDir, 'initrd.img'), initrd);
    writeFileSync(
      join(discoveryDir, 'manifest.json'),
      JSON.stringify({ name: 'discovery', hash: 'test', kernel: { file: 'vmlinuz', size: kernel.length, sha256: sha(kernel) }, initrd: { file: 'initrd.img', size: initrd.length, sha256: sha(initrd) } }),
    );
    central = await spawnCentral();
    env = { UNDERLAY_URL: central.url, UNDERLAY_TOKEN: central.token, UNDERLAY_CA: central.caPath };
    expect((await runCli(['sites', 'create', 's1'], { env })).code).toBe(0);
  });

  afterAll(async () => {
    if (agent?.pid && agent.exitCode === null) agent.kill('SIGKILL');
    await killAllCentrals();
    await central?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const push = async (...args: string[]) => runCli(['images', 'push', ...args, '-o', 'json'], { env });

  it('pushes zstd and xz images with the raw disk hash and size; list and show give ImageRefs', async () => {
    const z = await push(zstFile, '--name', 'tiny-zst');
    expect(z.code, z.stderr).toBe(0);
    expect(JSON.parse(z.stdout)).toEqual([{ name: 'tiny-zst', sha256: sha(readFileSync(zstFile)), size: readFileSync(zstFile).length, format: 'zstd', rawSha256: sha(raw), rawSize: raw.length }]);
    const x = await push(xzFile, '--name', 'tiny-xz', '--format', 'xz');
    expect(x.code, x.stderr).toBe(0);
    expect(JSON.parse(x.stdout)[0]).toMatchObject({ format: 'xz', rawSha256: sha(raw), rawSize: raw.length });

    const list = await runCli(['images', 'list', '-o', 'json'], { env });
    expect(list.code, list.stderr).toBe(0);
    const items = JSON.parse(list.stdout) as unknown[];
    expect(items.map((i) => ImageRef.parse(i).name).sort()).toEqual(['tiny-xz', 'tiny-zst']);
    const show = await runCli(['images', 'show', 'tiny-zst', '-o', 'json'], { env });
    expect(ImageRef.parse(JSON.parse(show.stdout))).toMatchObject({ name: 'tiny-zst', format: 'zstd', sha256: sha(readFileSync(zstFile)) });
    // The artifacts collection holds it in the shape a deploy looks up: name + image {format, rawSha256, rawSize}.
    const art = (await central.request('GET', '/api/v1/artifacts')).json as { items: { name?: string; image?: unknown }[] };
    expect(art.items.find((a) => a.name === 'tiny-zst')?.image).toEqual({ format: 'zstd', rawSha256: sha(raw), rawSize: raw.length });
  });

  it('re-pushing the same bytes is idempotent; the name on other bytes needs --replace', async () => {
    const again = await push(zstFile, '--name', 'tiny-zst');
    expect(again.code, again.stderr).toBe(0);
    const other = randomBytes(4096);
    const otherFile = join(dir, 'other.raw');
    writeFileSync(otherFile, other);
    const clash = await push(otherFile, '--name', 'tiny-zst');
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/already belongs to sha256:.*--replace/);
    expect(((await central.request('GET', '/api/v1/images/tiny-zst')).json as { sha256: string }).sha256).toBe(sha(readFileSync(zstFile)));
  });

  it('a qcow2 image is converted (raw, then zstd): its raw hash is the disk\'s', async () => {
    const q = await push(qcowFile, '--name', 'tiny-qcow');
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)[0]).toMatchObject({ name: 'tiny-qcow', format: 'zstd', rawSha256: sha(qcowRaw), rawSize: qcowRaw.length });
    const explicit = await push(qcowFile, '--name', 'tiny-qcow2', '--format', 'raw');
    expect(explicit.code).not.toBe(0);
    expect(explicit.stderr).toMatch(/is qcow2, not raw/);
  });

  it('refuses a corrupted upload: nothing stored, no record', async () => {
    const bytes = readFileSync(zstFile);
    const claimed = sha(Buffer.concat([bytes, Buffer.from('x')]));
    const q = `name=evil&format=zstd&rawSha256=${sha(raw)}&rawSize=${raw.length}`;
    const res = await central.request('PUT', `/api/v1/artifacts/${claimed}?${q}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(400);
    expect(existsSync(join(central.dataDir, 'artifacts', claimed))).toBe(false);
    expect((await central.request('GET', '/api/v1/images/evil')).status).toBe(404);
    expect(readdirSync(join(central.dataDir, 'artifacts')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('pushes the discovery build as the boot-dir paths the discovery boot environment names', async () => {
    const r = await push(discoveryDir);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { name: string; sha256: string }[]).map((x) => [x.name, x.sha256])).toEqual([
      ['discovery/vmlinuz', sha(kernel)],
      ['discovery/initrd.img', sha(initrd)],
    ]);
  });

  it('an agent pulls images and the discovery image over mTLS, boots unknown machines from them with nothing copied by hand, serves Range', async () => {
    const join1 = await runCli(['token', 'create', '--role', 'agent-join', '--site', 's1', '-o', 'json'], { env });
    const token = (JSON.parse(join1.stdout) as { token: string }).token;
    const state = join(dir, 'agent');
    const joined = await runCli(['agent', 'join', '--central', central.url, '--token', token, '--state', state], { env: {} });
    expect(joined.code, joined.stderr).toBe(0);
    const httpPort = await freePort();
    const tftpPort = await freePort();
    mkdirSync(bootDir, { recursive: true });
    agent = spawn(process.execPath, [CLI, 'agent', 'run', '--state', state, '--address', '127.0.0.1', '--dhcp', 'off', '--http-port', String(httpPort), '--tftp-port', String(tftpPort), '--boot-dir', bootDir], {
      env: cleanEnv({ ...HOST_AGENT_ENV }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    agent.stdout!.on('data', (d: Buffer) => (log += d.toString()));

    const zst = readFileSync(zstFile);
    const want = [sha(zst), sha(readFileSync(xzFile)), sha(kernel), sha(initrd)];
    const pulled = (s: string) => existsSync(join(bootDir, 'sha256', s));
    for (let i = 0; i < 600 && !want.every(pulled); i++) await sleep(100);
    expect(want.filter((s) => !pulled(s)), log).toEqual([]);
    expect(existsSync(join(bootDir, 'discovery')), 'nothing copied into the boot dir by hand').toBe(false);

    // An unknown machine gets discovery, served from the pulled artifacts.
    let script = '';
    for (let i = 0; i < 100; i++) {
      const res = await httpGet(`http://127.0.0.1:${httpPort}/ipxe/script?mac=52:54:00:aa:bb:cc&platform=pcbios&buildarch=x86_64`);
      script = res.body.toString();
      if (res.status === 200 && script.includes(`/files/sha256/${sha(initrd)}`)) break;
      await sleep(100);
    }
    expect(script).toContain(`http://127.0.0.1:${httpPort}/files/sha256/${sha(kernel)}`);
    expect(script).toContain(`http://127.0.0.1:${httpPort}/files/sha256/${sha(initrd)}`);
    expect(script).not.toContain('/files/discovery/');
    const k = await httpGet(`http://127.0.0.1:${httpPort}/files/sha256/${sha(kernel)}`);
    expect(k.status).toBe(200);
    expect(k.body.equals(kernel)).toBe(true);

    // The image is served whole and by range (a runner resuming after a dropped connection).
    const whole = await httpGet(`http://127.0.0.1:${httpPort}/files/sha256/${sha(zst)}`);
    expect(whole.status).toBe(200);
    expect(sha(whole.body)).toBe(sha(zst));
    const part = await httpGet(`http://127.0.0.1:${httpPort}/files/sha256/${sha(zst)}`, { range: 'bytes=1000-' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-${zst.length - 1}/${zst.length}`);
    expect(part.body.equals(zst.subarray(1000))).toBe(true);
  });

  it('the central serves artifact byte ranges (what an agent resumes with)', async () => {
    const zst = readFileSync(zstFile);
    const part = await central.request('GET', `/api/v1/artifacts/${sha(zst)}`, { headers: { range: 'bytes=100-' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-${zst.length - 1}/${zst.length}`);
    expect(part.headers['content-length']).toBe(String(zst.length - 100));
    const past = await central.request('GET', `/api/v1/artifacts/${sha(zst)}`, { headers: { range: `bytes=${zst.length}-` } });
    expect(past.status).toBe(416);
  });

  it('images fetch refuses an unpinned upstream URL (naming it) unless --allow-unpinned, and stores nothing', async () => {
    const body = randomBytes(10_000);
    const upstream = createServer((_req, res) => res.writeHead(200, { 'content-length': String(body.length) }).end(body));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/vmlinuz`;
    try {
      const created = await central.request('POST', '/api/v1/bootenvs', { body: { name: 'loose', os: { family: 'test' }, kernel: { url }, bootParams: '' } });
      expect(created.status).toBe(201);
      const refused = await runCli(['images', 'fetch', 'loose', '-o', 'json'], { env });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain(`${url} (kernel.url) with no sha256`);
      expect(refused.stderr).toContain('--allow-unpinned');
      expect(existsSync(join(central.dataDir, 'artifacts', sha(body)))).toBe(false);
      const allowed = await runCli(['images', 'fetch', 'loose', '--allow-unpinned', '-o', 'json'], { env });
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(existsSync(join(central.dataDir, 'artifacts', sha(body)))).toBe(true);
    } finally {
      await new Promise<void>((r) => upstream.close(() => r()));
    }
  });

  it('deletes an image nothing uses', async () => {
    const del = await runCli(['images', 'delete', 'tiny-xz'], { env });
    expect(del.code, del.stderr).toBe(0);
    const show = await runCli(['images', 'show', 'tiny-xz'], { env });
    expect(show.code).toBe(4);
    expect(existsSync(join(central.dataDir, 'artifacts', sha(readFileSync(xzFile))))).toBe(false);
  });

  it('images build discovery --push registers the real build; the running agent switches to it', async () => {
    // The real recipe (scripts/images/build-discovery.sh): cached on a host that built it before, else built now.
    const built = await runCli(['images', 'build', 'discovery', '--push', '-o', 'json'], { env });
    expect(built.code, built.stderr).toBe(0);
    // The build's report goes to stderr with --push; its output directory is the last line it printed.
    const outDir = built.stderr.split('\n').filter((l) => l.startsWith('/') && existsSync(join(l, 'manifest.json'))).pop()!;
    const manifest = JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')) as { kernel: { sha256: string }; initrd: { sha256: string } };
    expect((JSON.parse(built.stdout) as { name: string; sha256: string }[]).map((x) => [x.name, x.sha256])).toEqual([
      ['discovery/vmlinuz', manifest.kernel.sha256],
      ['discovery/initrd.img', manifest.initrd.sha256],
    ]);
    const port = /--http-port,(\d+)/.exec(agent!.spawnargs.join(','))![1];
    let script = '';
    for (let i = 0; i < 600 && !script.includes(manifest.initrd.sha256); i++) {
      script = (await httpGet(`http://127.0.0.1:${port}/ipxe/script?mac=52:54:00:aa:bb:cd&platform=pcbios&buildarch=x86_64`)).body.toString();
      if (!script.includes(manifest.initrd.sha256)) await sleep(200);
    }
    expect(script).toContain(`/files/sha256/${manifest.kernel.sha256}`);
    expect(script).toContain(`/files/sha256/${manifest.initrd.sha256}`);
    expect(readFileSync(join(bootDir, 'sha256', manifest.kernel.sha256)).equals(readFileSync(join(outDir, 'vmlinuz')))).toBe(true);
  }, 900_000);
});
