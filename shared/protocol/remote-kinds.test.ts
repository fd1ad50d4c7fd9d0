import { describe, expect, it } from 'vitest';
import { CHUNK_B64, CHUNK_BYTES } from './remote-kinds.js';
import { TASK_KINDS } from './task-kinds.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('exec, put-file and fetch-file payloads', () => {
  it('are machine-target kinds that need a machine', () => {
    for (const k of ['exec', 'put-file', 'fetch-file'] as const) expect(TASK_KINDS[k]).toMatchObject({ target: 'machine', machine: true });
  });

  it('exec: a base64 command, optional stdin inline or from a file, never both', () => {
    const exec = TASK_KINDS.exec.payload;
    expect(exec.safeParse({ cmdB64: b64('id') }).success).toBe(true);
    expect(exec.safeParse({ cmdB64: b64("/bin/sh -c 'python3 && sleep 0'"), stdinB64: b64('print(1)'), timeoutSec: 60 }).success).toBe(true);
    expect(exec.safeParse({ cmdB64: b64('sh'), stdinPath: '/root/.ansible/tmp/x' }).success).toBe(true);
    expect(exec.safeParse({ cmdB64: b64('sh'), stdinPath: '/x', stdinB64: b64('y') }).success).toBe(false);
    expect(exec.safeParse({ cmdB64: '' }).success).toBe(false);
    expect(exec.safeParse({ cmdB64: 'not base64!' }).success).toBe(false);
    expect(exec.safeParse({ cmdB64: b64('id'), extra: 1 }).success).toBe(false);
    // stdin over one chunk must travel as put-file first
    expect(exec.safeParse({ cmdB64: b64('sh'), stdinB64: b64(Buffer.alloc(CHUNK_BYTES)) }).success).toBe(true);
    expect(exec.safeParse({ cmdB64: b64('sh'), stdinB64: b64(Buffer.alloc(CHUNK_BYTES + 3)) }).success).toBe(false);
  });

  it('put-file: absolute path without line breaks, an offset, one chunk at most', () => {
    const put = TASK_KINDS['put-file'].payload;
    expect(put.safeParse({ path: '/etc/motd', offset: 0, dataB64: b64('hi'), final: true, mode: '0644' }).success).toBe(true);
    for (const path of ['etc/motd', '/etc/mo\ntd', '/a\0b', '/', 'x'.repeat(5000)]) expect(put.safeParse({ path, offset: 0, dataB64: '', final: true }).success, JSON.stringify(path)).toBe(false);
    expect(put.safeParse({ path: '/x', offset: -1, dataB64: '', final: true }).success).toBe(false);
    expect(put.safeParse({ path: '/x', offset: 0, dataB64: 'A'.repeat(CHUNK_B64 + 4), final: true }).success).toBe(false);
    expect(put.safeParse({ path: '/x', offset: 0, dataB64: '', final: true, mode: 'u+x' }).success).toBe(false);
  });

  it('fetch-file: a range of at most one chunk', () => {
    const fetch = TASK_KINDS['fetch-file'].payload;
    expect(fetch.safeParse({ path: '/etc/hostname', offset: 0, length: CHUNK_BYTES }).success).toBe(true);
    expect(fetch.safeParse({ path: '/etc/hostname', offset: 0, length: CHUNK_BYTES + 1 }).success).toBe(false);
    expect(fetch.safeParse({ path: '/etc/hostname', offset: 0, length: 0 }).success).toBe(false);
  });
});
