import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MachineIds } from './machine-id.js';

describe('proposed machine ids', () => {
  it('are stable per MAC (any case), distinct per MAC and per agent, and UUID-shaped', () => {
    const ids = new MachineIds(randomBytes(32));
    const a = ids.proposed('52:54:00:00:00:01');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids.proposed('52:54:00:00:00:01'.toUpperCase())).toBe(a);
    expect(ids.proposed('52:54:00:00:00:02')).not.toBe(a);
    expect(new MachineIds(randomBytes(32)).proposed('52:54:00:00:00:01')).not.toBe(a);
  });
});
