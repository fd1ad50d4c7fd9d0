import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log/logger.js';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import { ArtifactSync, partialName } from './sync.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const state = (artifacts: DesiredState['artifacts']) => ({ artifacts }) as DesiredState;

/** A stand-in for the central's artifact download (plain HTTP; the agent uses its client certificate over HTTPS). */
function central(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server })));
}

function serveRange(body: Buffer, req: IncomingMessage, res: ServerResponse, cutAfter?: number) {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const slice = body.subarray(start);
  res.writeHead(m ? 206 : 200, { 'content-length': String(slice.length), ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
  if (cutAfter === undefined) return res.end(slice);
  res.write(slice.subarray(0, cutAfter), () => res.socket?.end()); // the connection drops mid-transfer
}

let dir: string;
let server: Server | undefined;
let sync: ArtifactSync | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'artifact-sync-'));
});
afterEach(async () => {
  sync?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const make = (url: string) => new ArtifactSync({ centralUrl: url, tls: { key: '', cert: '', ca: '' }, dir, logger: silentLogger, retryDelayMs: 1, stallMs: 2000 });

describe('ArtifactSync', () => {
  it('resumes with a Range request after the connection drops, and keeps the file only once whole and verified', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const ranges: (string | undefined)[] = [];
    let seenPartialOnly = false;
    let s: { url: string; server: Server };
    s = await central((req, res) => {
      ranges.push(req.headers.range);
      // While a transfer is under way the artifact is only ever present as the hidden partial file.
      if (existsSync(join(dir, sha(body)))) seenPartialOnly = false;
      else if (ranges.length > 1) seenPartialOnly = existsSync(join(dir, partialName(sha(body))));
      serveRange(body, req, res, ranges.length <= 2 ? 1024 * 1024 : undefined);
    });
    server = s.server;
    sync = make(s.url);
    sync.update(state([{ sha256: sha(body), size: body.length, urls: ['http://upstream.example/vmlinuz'], name: 'discovery/vmlinuz' }]));
    await sync.idle();
    // Three requests: the whole file, then twice the tail from wherever the dropped connection left off.
    expect(ranges).toHaveLength(3);
    expect(ranges[0]).toBeUndefined();
    const starts = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? '')?.[1]));
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[1]).toBeGreaterThan(starts[0]!);
    expect(seenPartialOnly).toBe(true);
    expect(readFileSync(join(dir, sha(body))).equals(body)).toBe(true);
    expect(existsSync(join(dir, partialName(sha(body))))).toBe(false);
    expect(sync.localPath('http://upstream.example/vmlinuz')).toBe(`sha256/${sha(body)}`);
    expect(sync.localPath('discovery/vmlinuz')).toBe(`sha256/${sha(body)}`);
    expect(sync.localPath('discovery/initrd.img')).toBeUndefined();
  });

  it('resumes from a partial file left by an earlier run (an agent restart)', async () => {
    const body = randomBytes(200_000);
    writeFileSync(join(dir, partialName(sha(body))), body.subarray(0, 150_000));
    const ranges: (string | undefined)[] = [];
    const s = await central((req, res) => {
      ranges.push(req.headers.range);
      serveRange(body, req, res);
    });
    server = s.server;
    sync = make(s.url);
    sync.update(state([{ sha256: sha(body), size: body.length, urls: [], name: 'vmlinuz' }]));
    await sync.idle();
    expect(ranges).toEqual(['bytes=150000-']);
    // A plain (non-path) name never stands in for a boot-dir file.
    expect(sync.localPath('vmlinuz')).toBeUndefined();
    expect(readFileSync(join(dir, sha(body))).equals(body)).toBe(true);
  });

  it('discards bytes that do not hash to the artifact: nothing under the final name, no name mapping', async () => {
    const body = randomBytes(100_000);
    const corrupt = Buffer.from(body);
    corrupt[5000] ^= 0xff;
    const s = await central((req, res) => serveRange(corrupt, req, res));
    server = s.server;
    sync = make(s.url);
    sync.update(state([{ sha256: sha(body), size: body.length, urls: [], name: 'discovery/initrd.img' }]));
    await sync.idle();
    expect(existsSync(join(dir, sha(body)))).toBe(false);
    expect(existsSync(join(dir, partialName(sha(body))))).toBe(false);
    expect(sync.localPath('discovery/initrd.img')).toBeUndefined();
  });

  it('gives up for this pass after its attempts when the central keeps dropping, keeping what it has', async () => {
    const body = randomBytes(300_000);
    let calls = 0;
    const s = await central((req, res) => {
      calls++;
      serveRange(body, req, res, 10_000);
    });
    server = s.server;
    sync = new ArtifactSync({ centralUrl: s.url, tls: { key: '', cert: '', ca: '' }, dir, logger: silentLogger, retryDelayMs: 1, attempts: 3 });
    sync.update(state([{ sha256: sha(body), size: body.length, urls: [] }]));
    await sync.idle();
    expect(calls).toBe(3);
    expect(existsSync(join(dir, sha(body)))).toBe(false);
    const kept = readFileSync(join(dir, partialName(sha(body))));
    expect(kept.length).toBe(30_000); // three attempts of 10,000 bytes each, every one resumed
    expect(kept.equals(body.subarray(0, kept.length))).toBe(true);
  });

  it('pulls the smallest artifacts first, so boot files do not wait behind a large image', async () => {
    const big = randomBytes(400_000);
    const small = randomBytes(1000);
    const order: string[] = [];
    const s = await central((req, res) => {
      const body = req.url!.endsWith(sha(big)) ? big : small;
      order.push(body === big ? 'big' : 'small');
      serveRange(body, req, res);
    });
    server = s.server;
    sync = make(s.url);
    sync.update(state([{ sha256: sha(big), size: big.length, urls: [] }, { sha256: sha(small), size: small.length, urls: [], name: 'discovery/vmlinuz' }]));
    await sync.idle();
    expect(order).toEqual(['small', 'big']);
    expect(sync.localPath('discovery/vmlinuz')).toBe(`sha256/${sha(small)}`);
  });
});
