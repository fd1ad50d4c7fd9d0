import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BOOT_ROUTES, bootUrls, filePathOf, machineFilePathOf } from './urls.js';

/** A hono route pattern as a regular expression over request paths (`:name` one segment, `*` the rest). */
const patternOf = (route: string) => new RegExp(`^${route.replace(/[.]/g, '\\.').replace(/:[a-z]+/g, '[^/]+').replace(/\*$/, '.+')}$`);
const routed = (url: string) => Object.entries(BOOT_ROUTES).filter(([, r]) => patternOf(r).test(new URL(url).pathname)).map(([k]) => k);

describe('boot URLs: one definition for DHCP, the HTTP routes and the render context', () => {
  const u = bootUrls('http://198.18.0.1:8080/');

  it('builds the absolute URLs machines are given', () => {
    expect(u.base).toBe('http://198.18.0.1:8080');
    expect(u.entryScript).toBe('http://198.18.0.1:8080/boot.ipxe');
    expect(u.machineScript).toBe('http://198.18.0.1:8080/ipxe/script');
    expect(u.ipxeBinary('ipxe.efi')).toBe('http://198.18.0.1:8080/ipxe/ipxe.efi');
    expect(u.file('/debian/vmlinuz')).toBe('http://198.18.0.1:8080/files/debian/vmlinuz');
    expect(u.machineBase('TOKEN_abc-123')).toBe('http://198.18.0.1:8080/m/TOKEN_abc-123');
    expect(u.installDone('TOKEN_abc-123')).toBe('http://198.18.0.1:8080/m/TOKEN_abc-123/done');
  });

  it('every URL it builds is served by the route meant for it', () => {
    expect(routed(u.entryScript)).toEqual(['entryScript']);
    expect(routed(u.machineScript)).toEqual(['machineScript', 'ipxeBinary']); // registered first, so it wins
    expect(routed(u.ipxeBinary('snponly.efi'))).toEqual(['ipxeBinary']);
    expect(routed(u.file('sha256/abc'))).toEqual(['files']);
    expect(routed(`${u.machineBase('tok')}/user-data`)).toEqual(['machineFile']);
    expect(routed(u.installDone('tok'))).toEqual(['machineFile', 'installDone']);
  });

  it('takes the file path back out of a request path', () => {
    expect(filePathOf(new URL(u.file('a/b%20c.img')).pathname)).toBe('a/b%20c.img');
    expect(machineFilePathOf(new URL(`${u.machineBase('tok')}/meta-data`).pathname, 'tok')).toBe('meta-data');
  });

  it('every agent API path the discovery image calls (shell, it cannot import this) is one of these routes', () => {
    const dir = new URL('../../images/discovery/', import.meta.url);
    const called = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.sh') || n === 'init')) {
      for (const m of readFileSync(new URL(f, dir), 'utf8').matchAll(/\/api\/v1\/[A-Za-z0-9_/$<>{}.-]+/g)) {
        called.add(m[0].split('/').map((seg) => (/[$<{]/.test(seg) ? 'x' : seg)).join('/'));
      }
    }
    expect([...called]).toEqual(expect.arrayContaining(['/api/v1/boot/claim', '/api/v1/discovery', '/api/v1/runner/next', '/api/v1/runner/tasks/x/events']));
    for (const path of called) expect(routed(`${u.base}${path}`), path).not.toEqual([]);
  });
});

