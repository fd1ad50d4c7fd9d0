import { describe, expect, it } from 'vitest';
import { CentralOptions } from './options.js';

describe('certificate lifetime options', () => {
  it('default to 90 days for agents and 397 days for the server', () => {
    const o = CentralOptions.parse({});
    expect(o.agentCertLifetime).toBe(90 * 86_400_000);
    expect(o.serverCertLifetime).toBe(397 * 86_400_000);
  });
  it('take the duration grammar (so tests can use seconds)', () => {
    expect(CentralOptions.parse({ agentCertLifetime: '30s', serverCertLifetime: '12h' })).toMatchObject({ agentCertLifetime: 30_000, serverCertLifetime: 12 * 3_600_000 });
  });
  it('refuse nonsense, less than 10 s and more than 10 years, naming the option', () => {
    for (const bad of ['soon', '5s', '0', '4000d', '-1d']) {
      const r = CentralOptions.safeParse({ agentCertLifetime: bad });
      expect(r.success, bad).toBe(false);
      expect(r.error!.issues[0].path).toEqual(['agentCertLifetime']);
    }
  });
});
