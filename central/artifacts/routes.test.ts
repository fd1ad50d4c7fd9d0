import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessCentral, type InProcessCentral } from '../../test/central/in-process.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const RAW = 'c'.repeat(64);
const octet = { 'content-type': 'application/octet-stream' };

let central: InProcessCentral;
beforeAll(async () => {
  central = await startInProcessCentral();
});
afterAll(async () => central?.close());

const put = (body: Buffer, query: string, claimed = sha(body)) => central.request('PUT', `/api/v1/artifacts/${claimed}?${query}`, { body, headers: octet });
const artifactFiles = () => readdirSync(join(central.dir, 'data', 'artifacts'));

describe('artifact and image routes', () => {
  it('stores an image and shows it as an ImageRef; idempotent re-put; 409 for the name on other bytes', async () => {
    const body = randomBytes(2048);
    const q = `name=img1&format=zstd&rawSha256=${RAW}&rawSize=4096`;
    const first = await put(body, q);
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ name: 'img1', image: { format: 'zstd', rawSha256: RAW, rawSize: 4096 } });
    expect((await put(body, q)).status).toBe(201);
    expect((await central.request('GET', '/api/v1/images/img1')).json).toEqual({ name: 'img1', sha256: sha(body), size: 2048, format: 'zstd', rawSha256: RAW, rawSize: 4096 });
    const other = randomBytes(100);
    const clash = await put(other, q);
    expect(clash.status).toBe(409);
    expect(existsSync(join(central.dir, 'data', 'artifacts', sha(other)))).toBe(false);
    const replaced = await put(other, `${q}&replace=true`);
    expect(replaced.status).toBe(201);
    expect(((await central.request('GET', '/api/v1/images/img1')).json as { sha256: string }).sha256).toBe(sha(other));
  });

  it.each([
    ['half the image metadata', `name=x&format=zstd`],
    ['a bad format', `name=x&format=qcow2&rawSha256=${RAW}&rawSize=4096`],
    ['a raw size below one sector', `name=x&format=raw&rawSha256=${RAW}&rawSize=12`],
    ['a non-numeric raw size', `name=x&format=raw&rawSha256=${RAW}&rawSize=lots`],
    ['a bad raw sha256', `name=x&format=raw&rawSha256=XYZ&rawSize=4096`],
    ['an image without a name', `format=raw&rawSha256=${RAW}&rawSize=4096`],
    ['an image name with a slash', `name=a/b&format=raw&rawSha256=${RAW}&rawSize=4096`],
    ['a path-escaping artifact name', `name=../../etc/passwd`],
    ['a huge name', `name=${'a'.repeat(5000)}`],
    ['a bad replace flag', `name=x&replace=yes`],
  ])('refuses %s with 400 and stores nothing', async (_l, q) => {
    const before = artifactFiles();
    const body = randomBytes(600);
    const r = await put(body, q);
    expect(r.status).toBe(400);
    expect(r.json.error).toBeDefined();
    expect(artifactFiles()).toEqual(before);
  });

  it('refuses bytes that do not hash to the claimed sha256, leaving no temp file and no record', async () => {
    const claimed = sha(Buffer.from('the real image'));
    const r = await put(Buffer.from('tampered'), `name=evil&format=raw&rawSha256=${RAW}&rawSize=4096`, claimed);
    expect(r.status).toBe(400);
    expect(artifactFiles().filter((f) => f === claimed || f.startsWith('.'))).toEqual([]);
    expect((await central.request('GET', '/api/v1/images/evil')).status).toBe(404);
  });

  it('delete: 404 for an unknown image, 204 and the bytes gone for a free one', async () => {
    expect((await central.request('DELETE', '/api/v1/images/nope')).status).toBe(404);
    const body = randomBytes(700);
    expect((await put(body, `name=gone&format=raw&rawSha256=${RAW}&rawSize=4096`)).status).toBe(201);
    expect((await central.request('DELETE', '/api/v1/images/gone')).status).toBe(204);
    expect(existsSync(join(central.dir, 'data', 'artifacts', sha(body)))).toBe(false);
    expect((await central.request('GET', '/api/v1/images')).json.items.map((i: { name: string }) => i.name)).not.toContain('gone');
  });

  it('a viewer may list and show images but not delete them', async () => {
    const viewer = await central.token('viewer');
    expect((await central.request('GET', '/api/v1/images', { token: viewer })).status).toBe(200);
    expect((await central.request('DELETE', '/api/v1/images/img1', { token: viewer })).status).toBe(403);
  });
});
