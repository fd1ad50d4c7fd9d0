import { describe, expect, it } from 'vitest';
import { agentBound, auditLeases, keaBound } from './lease-files.js';

const KEA_HEAD = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context';

describe('lease file audit', () => {
  it('counts bound MACs and addresses from a Kea memfile, the last record of an address winning', () => {
    const csv = [
      KEA_HEAD,
      '198.18.2.0,02:42:00:00:00:01,,3600,1764570000,1,0,0,,0,',
      '198.18.2.1,02:42:00:00:00:02,,3600,1764570000,1,0,0,,0,',
      '198.18.2.1,02:42:00:00:00:02,,3600,1764570001,1,0,0,,0,', // renewed: same holder
      '198.18.2.2,02:42:00:00:00:03,,0,1764570000,1,0,0,,0,', // released (valid_lifetime 0)
      '',
    ].join('\n');
    expect(auditLeases(keaBound(csv))).toEqual({ boundMacs: 2, boundAddresses: 2, duplicates: [], macsWithSeveral: 0 });
  });

  it('finds an address that was bound to two MACs during the run (a duplicate), even if the first holder is gone at the end', () => {
    const csv = [KEA_HEAD, '198.18.2.5,02:42:00:00:00:01,,3600,1,1,0,0,,0,', '198.18.2.5,02:42:00:00:00:09,,3600,2,1,0,0,,0,'].join('\n');
    expect(auditLeases(keaBound(csv)).duplicates).toEqual(['198.18.2.5']);
    const journal = [
      JSON.stringify({ mac: '02:42:00:00:00:01', address: '198.18.2.5', subnet: 's', state: 'bound', expiresAt: 1, updatedAt: 1 }),
      JSON.stringify({ mac: '02:42:00:00:00:09', address: '198.18.2.5', subnet: 's', state: 'bound', expiresAt: 1, updatedAt: 2 }),
    ].join('\n');
    expect(auditLeases(agentBound(journal)).duplicates).toEqual(['198.18.2.5']);
  });

  it('reads the agent journal: released records end a lease, a MAC holding two addresses is reported, a torn last line is skipped', () => {
    const rec = (mac: string, address: string, state: string) => JSON.stringify({ mac, address, subnet: 's', state, expiresAt: 1, updatedAt: 1 });
    const journal = [rec('02:00:00:00:00:01', '198.18.2.1', 'bound'), rec('02:00:00:00:00:01', '198.18.2.2', 'bound'), rec('02:00:00:00:00:02', '198.18.2.3', 'bound'), rec('02:00:00:00:00:02', '198.18.2.3', 'released'), '{"mac":"02:00:00:00:00:03","addr'].join('\n');
    expect(auditLeases(agentBound(journal))).toEqual({ boundMacs: 1, boundAddresses: 2, duplicates: [], macsWithSeveral: 1 });
  });

  it('refuses a file that is not a Kea lease file', () => {
    expect(() => keaBound('hello,world\n1,2\n')).toThrow(/not a Kea lease file/);
  });
});
