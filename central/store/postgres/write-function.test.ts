import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WRITE_FUNCTION_SQL, WRITE_FUNCTION_V3_SQL, WRITE_FUNCTION_V4_SQL, WRITE_FUNCTION_V5_SQL } from './write-function.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

describe('underlay_write migrations', () => {
  it('migrations 2 and 3 keep the exact text they shipped with (their SQL is partly generated from fragments migration 4 shares)', () => {
    expect(sha(WRITE_FUNCTION_SQL)).toBe('a912d6b9c3310d1a');
    expect(sha(WRITE_FUNCTION_V3_SQL)).toBe('658ee738ebdae0ce');
    expect(sha(WRITE_FUNCTION_V4_SQL)).toBe('b6f17006476a1416'); // migration 5 is generated from it
  });

  it('migration 5 reads the stored versions once, in the locking statement: the version check joins no table', () => {
    const fast = WRITE_FUNCTION_V5_SQL.slice(0, WRITE_FUNCTION_V5_SQL.indexOf('-- the slow way below'));
    expect(fast.match(/FOR UPDATE\) l;/g)).toHaveLength(1);
    const check = fast.slice(fast.indexOf('IF EXISTS ('), fast.indexOf('RAISE EXCEPTION'));
    expect(check).toContain('LEFT JOIN unnest(lcs, lids, lvers)');
    expect(check).not.toContain('underlay_docs');
    expect(WRITE_FUNCTION_V5_SQL).not.toContain('ALTER TABLE');
  });

  it('migration 4 parses the batch once on its fast path and has no per-commit block there', () => {
    const fast = WRITE_FUNCTION_V4_SQL.slice(WRITE_FUNCTION_V4_SQL.indexOf('CREATE FUNCTION underlay_write'), WRITE_FUNCTION_V4_SQL.indexOf('-- the slow way below'));
    expect(fast.match(/json_to_recordset\(ops\)/g)).toHaveLength(1);
    expect(fast.match(/\bBEGIN\b/g)).toHaveLength(2); // the function's body and the batch's one block: no block (subtransaction) per commit
  });
});
