import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../shared/errors/domain-errors.js';
import { OsCredentials } from './os-credentials.js';

describe('OsCredentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'underlay-oscred-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('issues once per deploy task, even to two racing requests', async () => {
    const c = new OsCredentials(join(dir, 'race.jsonl'));
    await c.open();
    const results = await Promise.allSettled([c.issue('m1', 'aa', 't1'), c.issue('m1', 'aa', 't1')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    await c.close();
  });

  it('one live credential per machine: a new deploy replaces it, revoke ends it; durable and hashed', async () => {
    const path = join(dir, 'creds.jsonl');
    const c = new OsCredentials(path);
    await c.open();
    const first = await c.issue('m1', 'aa', 'd1');
    expect(c.session(first, '198.18.0.5')).toMatchObject({ id: 'os:d1', machine: 'm1', mac: 'aa', remote: '198.18.0.5' });
    const second = await c.issue('m1', 'aa', 'd2');
    expect(c.find(first)).toBeUndefined();
    expect(c.find(second)?.task).toBe('d2');
    const other = await c.issue('m2', 'bb', 'd3');
    expect(c.find('x'.repeat(43))).toBeUndefined();
    expect(c.find(undefined)).toBeUndefined();
    expect(readFileSync(path, 'utf8')).not.toContain(second);
    await c.close();

    const again = new OsCredentials(path);
    await again.open();
    expect(again.find(second)?.machine).toBe('m1');
    expect(again.find(first)).toBeUndefined();
    await expect(again.issue('m1', 'aa', 'd1')).rejects.toBeInstanceOf(ConflictError); // spent survives a restart
    expect(await again.revoke('m1')).toBe(true);
    expect(again.find(second)).toBeUndefined();
    expect(await again.revoke('m1')).toBe(false);
    expect(again.find(other)?.machine).toBe('m2');
    await again.close();

    const third = new OsCredentials(path);
    await third.open();
    expect(third.find(second)).toBeUndefined();
    expect(third.find(other)?.task).toBe('d3');
    await third.close();
  });
});
