// The runner's image-deploy (images/discovery/deploy.sh) on this host, under busybox sh with busybox's
// wget/dd/head/sha256sum/xz as in the discovery image and Debian's zstd: the artifact comes from a
// loopback stand-in for the agent's /files/sha256/<sha256> (HTTP Range) that can drop connections and
// corrupt bytes; the "disk" is a regular file (UNDERLAY_DEPLOY_ALLOW_FILE). Partition growth, the seed and
// the reboot need a real disk: test/deploy/deploy-bios.test.ts covers them in QEMU.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';

const REPO = resolve(import.meta.dirname, '../..');
const LIB = join(REPO, 'images/discovery/lib.sh');
const ready = checkPrereqs('image-deploy runner', { commands: ['busybox', 'curl', 'zstd', 'xz'] });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Served {
  body: Buffer;
  /** Drop the connection after this many bytes of the response, for the first `times` responses. */
  dropAfter?: number;
  times?: number;
  status?: number;
  /** Drop the n-th response after drops[n] bytes (then serve normally). */
  drops?: number[];
  /** Answer 200 with the whole body whatever Range says (a server that cannot resume). */
  ignoreRange?: boolean;
}

describe.skipIf(!ready)('image-deploy in the runner (busybox, loopback agent)', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-deploy-runner-'));
  const bin = join(work, 'bin');
  const files = new Map<string, Served>();
  const ranges: string[] = [];
  let server: Server;
  let url: string;
  // A 3 MiB "disk image": random (incompressible) and zero parts, like a real one.
  const raw = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(1 << 20), randomBytes(1 << 20)]);
  const zst = execFileSync('zstd', ['-q', '-c', '-3'], { input: raw, maxBuffer: 64 << 20 });
  const xz = execFileSync('xz', ['-c', '-3', '--check=crc32'], { input: raw, maxBuffer: 64 << 20 });

  beforeAll(async () => {
    mkdirSync(bin);
    for (const a of ['wget', 'dd', 'head', 'sha256sum', 'xz', 'gzip', 'cat', 'sleep', 'date', 'wc', 'tr', 'cut', 'sed', 'awk', 'tail', 'mkdir', 'rm', 'cp', 'touch', 'kill', 'basename', 'readlink', 'dirname', 'sync', 'blockdev', 'od', 'echo', 'timeout'])
      symlinkSync('/bin/busybox', join(bin, a));
    symlinkSync(execFileSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).trim(), join(bin, 'zstd'));
    server = createServer((req, res) => {
      const f = files.get(req.url ?? '');
      if (!f) return res.writeHead(404).end();
      if (f.status) return res.writeHead(f.status).end();
      const m = f.ignoreRange ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      ranges.push(req.headers.range ?? 'none');
      const start = m ? Number(m[1]) : 0;
      const end = m && m[2] ? Math.min(Number(m[2]), f.body.length - 1) : f.body.length - 1;
      const part = f.body.subarray(start, end + 1);
      res.writeHead(m ? 206 : 200, { 'content-length': String(part.length), ...(m ? { 'content-range': `bytes ${start}-${end}/${f.body.length}` } : {}) });
      const drop = f.drops?.shift();
      if (drop !== undefined) {
        res.write(part.subarray(0, drop), () => res.destroy());
        return;
      }
      if (f.dropAfter !== undefined && (f.times ?? 1) > 0) {
        f.times = (f.times ?? 1) - 1;
        res.write(part.subarray(0, f.dropAfter), () => res.destroy());
        return;
      }
      res.end(part);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    if (!process.env.UL_KEEP) rmSync(work, { recursive: true, force: true });
  });

  /** Runs deploy_image for one payload against a file disk; returns the runner's reports and the disk. */
  async function deploy(name: string, image: Record<string, unknown>, env: Record<string, string> = {}) {
    const dir = join(work, name);
    mkdirSync(join(dir, 'state'), { recursive: true });
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(0));
    const envelope = { id: name, kind: 'image-deploy', payload: { image, disk, config: 'cloud-init' } };
    writeFileSync(join(dir, 'envelope.json'), JSON.stringify(envelope));
    const script = join(dir, 'run.sh');
    writeFileSync(
      script,
      `. "$UNDERLAY_LIB"
ul_init_env
TASKS="$UL_STATE/tasks"; MACHINE=m1; POWER_CMD=echo
. "$UL_LIBDIR/deploy.sh"
report() { printf '%s\\t%s\\t%s\\t%s\\n' "$1" "$2" "$5" "$(cat "$4" 2>/dev/null | tr '\\n' ' ')" >>"$UL_STATE/reports"; }
report_progress() { printf '%s\\n' "$2" >>"$UL_STATE/progress"; }
report_final_until_acked() { report "$@"; }
mkdir -p "$TASKS/${name}"
json_flat <"${join(dir, 'envelope.json')}" >"$TASKS/${name}/flat"
deploy_image ${name} "$TASKS/${name}/flat"
exit 0
`,
    );
    chmodSync(script, 0o755);
    const cmdline = join(dir, 'cmdline');
    writeFileSync(cmdline, `underlay.url=${url} underlay.mac=52:54:00:00:00:01\n`);
    // Asynchronously: the stand-in agent is served from this process's event loop.
    const { stdout: out } = await promisify(execFile)('/bin/busybox', ['sh', script], {
      encoding: 'utf8',
      env: {
        PATH: `${bin}:/usr/bin:/bin`,
        UNDERLAY_LIB: LIB,
        UNDERLAY_STATE: join(dir, 'state'),
        UNDERLAY_CMDLINE_FILE: cmdline,
        UNDERLAY_NO_CONSOLE: '1',
        UNDERLAY_DEPLOY_ALLOW_FILE: '1',
        UNDERLAY_PROGRESS_EVERY: '1',
        ...env,
      },
      timeout: 120_000,
    });
    const reports = readFileSync(join(dir, 'state', 'reports'), 'utf8').trim().split('\n').map((l) => {
      const [id, state, reason, output] = l.split('\t');
      return { id, state, reason, output };
    });
    let progress: Record<string, number | string>[] = [];
    try {
      progress = readFileSync(join(dir, 'state', 'progress'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string>);
    } catch {
      /* no progress file */
    }
    return { out, reports, progress, disk: readFileSync(disk), final: reports.at(-1)! };
  }
  const ref = (sha256: string, body: Buffer, format: string, over: Record<string, unknown> = {}) => ({ name: 'test-image', sha256, size: body.length, format, rawSha256: sha(raw), rawSize: raw.length, ...over });

  it('streams a zstd image in one request, resumes a dropped connection where it broke off, writes and verifies it', async () => {
    const id = sha(zst);
    // The first response breaks off after 1000 bytes, the second after 100,000 more.
    files.set(`/files/sha256/${id}`, { body: zst, drops: [1000, 100_000] });
    ranges.length = 0;
    const r = await deploy('zstd', ref(id, zst, 'zstd'));
    expect(r.final).toMatchObject({ state: 'succeeded' });
    expect(r.final.output).toContain(`sha256 ${sha(raw)} verified`);
    expect(r.out).toContain('reboot -f'); // then it reboots into the disk
    expect(sha(r.disk)).toBe(sha(raw));
    expect(ranges).toEqual(['none', 'bytes=1000-', 'bytes=101000-']);
    expect(r.final.output).toMatch(/write_ms=\d+ verify_ms=\d+ resumes=2/);
    expect(r.progress.some((p) => p.phase === 'verify' && p.bytesWritten === raw.length)).toBe(true);
  });

  it('writes a raw image straight from the stream (no decompressor), resuming after a drop', async () => {
    const id = sha(raw);
    files.set(`/files/sha256/${id}`, { body: raw, dropAfter: 1_234_567, times: 1 });
    ranges.length = 0;
    const r = await deploy('raw', ref(id, raw, 'raw'));
    expect(r.final).toMatchObject({ state: 'succeeded' });
    expect(sha(r.disk)).toBe(sha(raw));
    expect(ranges).toEqual(['none', 'bytes=1234567-']);
    expect(r.final.output).toContain('resumes=1');
  });

  it('will not resume from an agent that ignores Range (the bytes could not be placed): download-failed', async () => {
    const id = sha(raw);
    files.set(`/files/sha256/${id}`, { body: raw, dropAfter: 500_000, times: 1, ignoreRange: true });
    ranges.length = 0;
    const r = await deploy('norange', ref(id, raw, 'raw'), { UNDERLAY_DEPLOY_TRIES: '2' });
    expect(r.final).toMatchObject({ state: 'failed', reason: 'download-failed' });
    expect(r.final.output).toMatch(/range|resume/i);
    expect(r.out).not.toContain('reboot');
    // Only the first 500,000 bytes ever reached the disk: the 200 answers to the resumes were not written.
    expect(r.disk.length).toBe(500_000);
  });

  it('decompresses xz on the fly', async () => {
    const id = sha(xz);
    files.set(`/files/sha256/${id}`, { body: xz });
    const r = await deploy('xz', ref(id, xz, 'xz'));
    expect(r.final).toMatchObject({ state: 'succeeded' });
    expect(sha(r.disk)).toBe(sha(raw));
  });

  it('refuses an image with one flipped byte: hash-mismatch, failed, no reboot', async () => {
    const flipped = Buffer.from(raw);
    flipped[1_500_000] ^= 0x01;
    const body = execFileSync('zstd', ['-q', '-c'], { input: flipped, maxBuffer: 64 << 20 });
    const id = sha(body);
    files.set(`/files/sha256/${id}`, { body });
    const r = await deploy('flipped', ref(id, body, 'zstd'));
    expect(r.final).toMatchObject({ state: 'failed', reason: 'hash-mismatch' });
    expect(r.final.output).toContain(`expected ${sha(raw)}`);
    expect(r.out).not.toContain('reboot');
    expect(r.reports.some((x) => x.state === 'succeeded')).toBe(false);
  });

  it('refuses a corrupt compressed stream (zstd checksum): hash-mismatch', async () => {
    const bad = Buffer.from(zst);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    const id = sha(bad);
    files.set(`/files/sha256/${id}`, { body: bad });
    const r = await deploy('corrupt', ref(id, bad, 'zstd'));
    expect(r.final).toMatchObject({ state: 'failed', reason: 'hash-mismatch' });
    expect(r.out).not.toContain('reboot');
  });

  it('gives up on an artifact the agent does not serve: download-failed', async () => {
    const id = 'c'.repeat(64);
    files.set(`/files/sha256/${id}`, { body: zst, status: 503 });
    const r = await deploy('down', ref(id, zst, 'zstd'), { UNDERLAY_DEPLOY_TRIES: '2' });
    expect(r.final).toMatchObject({ state: 'failed', reason: 'download-failed' });
    expect(r.out).not.toContain('reboot');
  });

  it('stops at the deadline: timeout', async () => {
    const id = sha(zst);
    files.set(`/files/sha256/${id}`, { body: zst, dropAfter: 10, times: 1000 });
    const r = await deploy('timeout', ref(id, zst, 'zstd'), { UNDERLAY_DEPLOY_TIMEOUT: '2', UNDERLAY_DEPLOY_TRIES: '1000' });
    expect(r.final).toMatchObject({ state: 'failed', reason: 'timeout' });
  });

  it('refuses a malformed payload before touching the disk: bad-payload', async () => {
    const r = await deploy('payload', ref('not-hex!', zst, 'zstd'));
    expect(r.final).toMatchObject({ state: 'failed', reason: 'bad-payload' });
    expect(r.disk.length).toBe(0);
    const r2 = await deploy('format', ref(sha(zst), zst, 'lz4'));
    expect(r2.final).toMatchObject({ state: 'failed', reason: 'bad-payload' });
  });
});

