import { describe, expect, it } from 'vitest';
import { MASK, maskSecrets } from './mask.js';

describe('maskSecrets', () => {
  it('masks secret params by name, sealed values anywhere and fields named like secrets; keeps the rest', () => {
    const doc = {
      name: 'm1',
      params: { rack: 'r1', bmc_password: 'plain', other: { $sealed: { a1: 'box' } } },
      hash: 'sha256:abc',
      bmc: { host: '198.18.0.9', password: 'x', passwordParam: 'bmc_password' },
      secret: true,
      nested: [{ privateKey: 'PEM' }],
    };
    expect(maskSecrets(doc, new Set(['bmc_password']))).toEqual({
      name: 'm1',
      params: { rack: 'r1', bmc_password: MASK, other: MASK },
      hash: MASK,
      bmc: { host: '198.18.0.9', password: MASK, passwordParam: 'bmc_password' },
      secret: true,
      nested: [{ privateKey: MASK }],
    });
  });
});
