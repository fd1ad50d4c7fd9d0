import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MachineTokens } from './machine-token.js';

describe('per-machine tokens', () => {
  const tokens = new MachineTokens(randomBytes(32));

  it('round-trips a MAC and is stable', () => {
    const t = tokens.issue('52:54:00:AB:cd:01');
    expect(t).toMatch(/^525400abcd01-[A-Za-z0-9_-]{32}$/);
    expect(tokens.issue('52:54:00:ab:cd:01')).toBe(t);
    expect(tokens.verify(t)).toBe('52:54:00:ab:cd:01');
  });

  it('refuses a token for another MAC, a forged MAC, another agent’s token and junk', () => {
    const t = tokens.issue('52:54:00:00:00:01');
    const forged = `525400000002-${t.split('-').slice(1).join('-')}`;
    expect(tokens.verify(forged)).toBeNull();
    expect(new MachineTokens(randomBytes(32)).verify(t)).toBeNull();
    for (const junk of ['', 'x', '525400000001', `${t}x`, t.slice(0, -1), '../../etc/passwd', null, undefined]) expect(tokens.verify(junk)).toBeNull();
  });

  it('derives a deterministic UUID-shaped machine id per MAC, different per agent', () => {
    const a = tokens.proposedMachineId('52:54:00:00:00:01');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(tokens.proposedMachineId('52:54:00:00:00:01')).toBe(a);
    expect(tokens.proposedMachineId('52:54:00:00:00:02')).not.toBe(a);
    expect(new MachineTokens(randomBytes(32)).proposedMachineId('52:54:00:00:00:01')).not.toBe(a);
  });
});
