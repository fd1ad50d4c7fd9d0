import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeRequestPath, realRoot, resolveRequestPath } from './paths.js';


describe('normalizeRequestPath', () => {
  it('treats leading and doubled slashes and . segments as relative to the root', () => {
    expect(normalizeRequestPath('/undionly.kpxe')).toEqual({ ok: true, relative: 'undionly.kpxe' });
    expect(normalizeRequestPath('//efi/./ipxe.efi')).toEqual({ ok: true, relative: 'efi/ipxe.efi' });
  });
  it('refuses traversal, backslashes, control characters, empty and over-long names', () => {
    for (const p of ['..', '../etc/passwd', 'a/../../b', 'a/..', '\\windows\\boot', 'a\\..\\b', 'a\0b', 'a\nb', '', '/', '///', 'x'.repeat(256)]) {
      expect(normalizeRequestPath(p).ok, JSON.stringify(p)).toBe(false);
    }
  });
  it('allows names that merely contain dots', () => {
    expect(normalizeRequestPath('..hidden')).toEqual({ ok: true, relative: '..hidden' });
    expect(normalizeRequestPath('a..b/c...')).toEqual({ ok: true, relative: 'a..b/c...' });
  });
});

describe('resolveRequestPath', () => {
  let dir: string;
  let root: string;
  let outside: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ul-tftp-paths-'));
    outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'secret');
    const r = join(dir, 'root');
    mkdirSync(join(r, 'efi'), { recursive: true });
    writeFileSync(join(r, 'undionly.kpxe'), 'ipxe');
    writeFileSync(join(r, 'efi', 'ipxe.efi'), 'efi');
    symlinkSync(join(outside, 'secret'), join(r, 'escape'));
    symlinkSync(outside, join(r, 'escdir'));
    symlinkSync('efi/ipxe.efi', join(r, 'inside-link'));
    execFileSync('mkfifo', [join(r, 'fifo')]);
    root = await realRoot(r);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds regular files, with or without a leading slash, through symlinks inside the root', async () => {
    for (const [req, rel] of [
      ['undionly.kpxe', 'undionly.kpxe'],
      ['/undionly.kpxe', 'undionly.kpxe'],
      ['efi/ipxe.efi', 'efi/ipxe.efi'],
      ['inside-link', 'efi/ipxe.efi'],
    ] as const) {
      const r = await resolveRequestPath(root, req);
      expect(r.ok, req).toBe(true);
      expect(r.ok && r.path).toBe(join(root, rel));
    }
  });

  it('refuses symlinks leaving the root with error 2 and a generic message', async () => {
    for (const req of ['escape', 'escdir/secret']) {
      const r = await resolveRequestPath(root, req);
      expect(r).toMatchObject({ ok: false, code: 2, message: 'Access violation' });
    }
  });

  it('refuses traversal before touching the file system', async () => {
    const r = await resolveRequestPath(root, '../outside/secret');
    expect(r).toMatchObject({ ok: false, code: 2, message: 'Access violation', reason: 'parent segment in path' });
  });

  it('answers missing files, directories and FIFOs with error 1', async () => {
    for (const req of ['nope', 'efi', 'fifo', 'efi/nope/deeper']) {
      const r = await resolveRequestPath(root, req);
      expect(r, req).toMatchObject({ ok: false, code: 1, message: 'File not found' });
    }
  });

  it('realRoot refuses a file as root', async () => {
    await expect(realRoot(join(root, 'undionly.kpxe'))).rejects.toThrow(/not a directory/);
  });
});
