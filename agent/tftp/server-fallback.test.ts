import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, expect, it, vi } from 'vitest';
import { tftpGet } from '../../scripts/bench/tftp-client.js';
import { TftpServer } from './server.js';

// The addon "fails to load": the server must fall back to the JS data path and say so once.
vi.mock('./native-data-path.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./native-data-path.js')>();
  return { ...orig, selectDataPath: (wanted: 'auto' | 'js') => orig.selectDataPath(wanted, () => ({ ok: false, reason: 'addon not built (test)' })) };
});

const dir = mkdtempSync(join(tmpdir(), 'ul-tftp-fallback-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('falls back to the JS data path with one warning when the addon is unavailable', async () => {
  const lines: { level: number; msg: string; reason?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      cb();
    },
  });
  const bytes = Buffer.alloc(3 * 1468 + 7, 0x5a);
  writeFileSync(join(dir, 'f.bin'), bytes);
  // cacheMaxFileBytes 0: the file is streamed, which is what the native path would have served.
  const server = new TftpServer({ root: dir, address: '127.0.0.1', port: 0, cacheMaxFileBytes: 0, logger: pino({ level: 'info' }, sink) });
  expect(server.dataPath).toBe('js');
  const { port } = await server.start();
  for (let i = 0; i < 3; i++) {
    const r = await tftpGet({ host: '127.0.0.1', port, file: 'f.bin', options: { blksize: 1468 } });
    expect(createHash('sha256').update(r.data).digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  }
  await expect.poll(() => server.stats().completed).toBe(3); // the last ACK may still be on its way
  await server.stop();
  const warnings = lines.filter((l) => l.level === 40);
  expect(warnings).toEqual([expect.objectContaining({ msg: 'tftp native data path unavailable, using the JS data path', reason: 'addon not built (test)' })]);
});
