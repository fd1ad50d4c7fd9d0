/**
 * The agent's DHCP server against real clients (busybox udhcpc, ISC dhclient) inside network namespaces:
 * server namespace with br0 at 198.18.0.1/24, the server a child process inside it, clients in their own
 * namespaces attached by veth.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectDhcpIo } from '../../agent/dhcp/udp.js';
import { join } from 'node:path';
import { checkPrereqs } from '../support/require.js';
import type { NetNs } from '../support/netns.js';
import {
  closeDhcpSuite,
  dhclientFiles,
  dhclientOnce,
  dhclientRelease,
  dhclientStop,
  openDhcpSuite,
  readDhclientLog,
  readUdhcpcLog,
  SERVER,
  ServerProc,
  udhcpcOnce,
  udhcpcScript,
  until,
  type Built,
} from './harness.js';

const ready = checkPrereqs('dhcp real clients', { root: true, commands: ['ip', 'busybox', 'dhclient'] });

const SUBNET = {
  cidr: '198.18.0.0/24',
  range: { start: '198.18.0.100', end: '198.18.0.150' },
  gateway: '198.18.0.1',
  dns: ['198.18.0.1', '198.18.0.2'],
  domain: 'rack1.test',
  leaseTimeSec: 900,
};
const RESERVED_MAC = '02:00:00:00:aa:01';

describe.skipIf(!ready)('DHCP server with real clients', () => {
  let built: Built;
  let work: string;
  let rack: NetNs;
  let server: ServerProc | undefined;
  const config = (over: object = {}) => ({
    mode: 'full',
    interface: 'br0',
    serverAddress: SERVER,
    subnets: [SUBNET],
    reservations: [{ mac: RESERVED_MAC, address: '198.18.0.42', hostname: 'reserved1' }],
    leaseFile: join(work, 'leases.jsonl'),
    ...over,
  });

  beforeAll(async () => {
    ({ built, work, rack } = openDhcpSuite('ul-dhcp-e2e-'));
    server = await ServerProc.start(rack, built, config(), work);
  });

  afterAll(() => closeDhcpSuite({ built, work, rack }, server));

  it('udhcpc: DORA gives an address from the range with gateway, DNS and lease time', async () => {
    const c = rack.addClient('br0', '02:00:00:00:00:01');
    const lines = udhcpcOnce(c, work, 'u1');
    const bound = lines.find((l) => l.event === 'bound');
    expect(bound).toBeDefined();
    const last = Number(bound!.ip!.split('.')[3]);
    expect(bound!.ip!.startsWith('198.18.0.')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(100);
    expect(last).toBeLessThanOrEqual(150);
    expect(bound!.router).toBe('198.18.0.1');
    expect(bound!.dns).toBe('198.18.0.1');
    expect(bound!.lease).toBe('900');
    expect(bound!.subnet).toBe('255.255.255.0');
    expect(bound!.serverid).toBe(SERVER);
    await server!.waitFor((e) => e.event === 'lease-event' && e.type === 'lease' && e.address === bound!.ip && e.mac === '02:00:00:00:00:01', 'lease event');
    // The agent's sockets: batched through the addon when it is built (the relay suite runs node:dgram too).
    expect(server!.events.find((e) => e.event === 'ready')!.io).toBe(selectDhcpIo('auto').kind);
  });

  it('udhcpc: renew (unicast REQUEST) keeps the address; release frees it', async () => {
    const c = rack.addClient('br0', '02:00:00:00:00:02');
    const { script, log } = udhcpcScript(work, 'u2');
    const p = c.spawn(['busybox', 'udhcpc', '-i', 'eth0', '-f', '-t', '5', '-T', '2', '-s', script]);
    try {
      const bound = await until(() => readUdhcpcLog(log).find((l) => l.event === 'bound'), 'udhcpc bound');
      const before = server!.events.length;
      process.kill(p.pid!, 'SIGUSR1'); // renew now
      const renew = await until(() => readUdhcpcLog(log).find((l) => l.event === 'renew'), 'udhcpc renew');
      expect(renew.ip).toBe(bound.ip);
      await server!.waitFor((e) => e.event === 'lease-event' && e.type === 'lease' && e.address === bound.ip, 'renewed lease', before);
      // The renewal was a unicast REQUEST from the client's address with ciaddr set (RENEWING), answered unicast.
      const reqLine = await until(() => server!.stderr().split('\n').find((l) => l.includes('"type":"REQUEST"') && l.includes(`"ciaddr":"${bound.ip}"`) && l.includes(`"to":"${SERVER}"`)), 'renew REQUEST in the server log');
      expect(reqLine).toContain(`"from":{"address":"${bound.ip}","port":68}`);
      await until(() => server!.stderr().includes(`"to":{"address":"${bound.ip}","port":68,"broadcast":false}`), 'unicast ACK to ciaddr');
      process.kill(p.pid!, 'SIGUSR2'); // release
      await server!.waitFor((e) => e.event === 'lease-event' && e.type === 'release' && e.address === bound.ip, 'release');
      const leases = await server!.leases();
      expect(leases.find((l) => l.address === bound.ip)?.state).toBe('released');
    } finally {
      process.kill(p.pid!, 'SIGKILL');
    }
  });

  it('dhclient: DORA, then a reboot (INIT-REBOOT) keeps the address, then release frees it', async () => {
    const c = rack.addClient('br0', '02:00:00:00:00:03');
    const d = dhclientFiles(work, 'd1');
    try {
      dhclientOnce(c, d);
      const bound = readDhclientLog(d.log).find((l) => l.reason === 'BOUND');
      expect(bound).toBeDefined();
      expect(bound!.router).toBe('198.18.0.1');
      expect(bound!.dns).toBe('198.18.0.1,198.18.0.2');
      expect(bound!.lease).toBe('900');
      expect(bound!.mask).toBe('255.255.255.0');
      dhclientStop(d);
      // Second run with the same lease file: dhclient asks for its address back.
      dhclientOnce(c, d);
      const reboot = readDhclientLog(d.log).at(-1)!;
      expect(reboot.reason).toBe('REBOOT'); // INIT-REBOOT: REQUEST with option 50, no DISCOVER
      expect(reboot.ip).toBe(bound!.ip);
      dhclientRelease(c, d);
      await server!.waitFor((e) => e.event === 'lease-event' && e.type === 'release' && e.address === bound!.ip, 'dhclient release');
    } finally {
      dhclientStop(d);
    }
  });

  it('a reservation is honoured', () => {
    const c = rack.addClient('br0', RESERVED_MAC);
    const bound = udhcpcOnce(c, work, 'u3').find((l) => l.event === 'bound');
    expect(bound?.ip).toBe('198.18.0.42');
  });

  it('DECLINE (crafted with the codec) quarantines the address: the next offer is another one', async () => {
    const c = rack.addClient('br0', '02:00:00:00:00:04');
    c.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
    const out = JSON.parse(c.exec(['node', built.client, JSON.stringify({ mode: 'decline', mac: '02:00:00:00:00:04' })]));
    expect(out.first.type).toBe(2);
    expect(out.second.type).toBe(2);
    expect(out.second.yiaddr).not.toBe(out.first.yiaddr);
    await server!.waitFor((e) => e.event === 'lease-event' && e.type === 'decline' && e.address === out.first.yiaddr, 'decline event');
    const leases = await server!.leases();
    expect(leases.find((l) => l.address === out.first.yiaddr)?.state).toBe('declined');
  });

  it('kill -9 after ACKs: leases are still there after restart and clients get their addresses back', async () => {
    const a = rack.addClient('br0', '02:00:00:00:00:05');
    const b = rack.addClient('br0', '02:00:00:00:00:06');
    const ipA = udhcpcOnce(a, work, 'u5').find((l) => l.event === 'bound')!.ip!;
    const ipB = udhcpcOnce(b, work, 'u6').find((l) => l.event === 'bound')!.ip!;
    expect(ipA).not.toBe(ipB);
    await server!.kill('SIGKILL');
    server = await ServerProc.start(rack, built, config(), work, 'server-restarted');
    const loaded = server.events.find((e) => e.event === 'ready')!.leases as Array<{ mac: string; address: string; state: string }>;
    expect(loaded.find((l) => l.mac === '02:00:00:00:00:05')).toMatchObject({ address: ipA, state: 'bound' });
    expect(loaded.find((l) => l.mac === '02:00:00:00:00:06')).toMatchObject({ address: ipB, state: 'bound' });
    // B asks first this time, without naming its address: the server remembers it.
    a.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    b.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    expect(udhcpcOnce(b, work, 'u6b').find((l) => l.event === 'bound')!.ip).toBe(ipB);
    expect(udhcpcOnce(a, work, 'u5b').find((l) => l.event === 'bound')!.ip).toBe(ipA);
  });

  it('a reservations-only subnet ignores an unknown MAC and serves a reserved one', async () => {
    await server!.kill('SIGTERM');
    server = await ServerProc.start(rack, built, config({ subnets: [{ ...SUBNET, reservationsOnly: true }], leaseFile: join(work, 'leases-ro.jsonl') }), work, 'server-ro');
    const unknown = rack.addClient('br0', '02:00:00:00:00:07');
    const { script, log } = udhcpcScript(work, 'u7');
    expect(() => unknown.exec(['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '2', '-T', '1', '-s', script])).toThrow();
    expect(readUdhcpcLog(log).some((l) => l.event === 'bound')).toBe(false);
    const st = (await server.leases(), server.events.at(-1)!.stats) as { byType: Record<string, number>; ignored: number; sent: Record<string, number> };
    expect(st.byType.DISCOVER).toBeGreaterThan(0);
    expect(st.ignored).toBe(st.byType.DISCOVER);
    expect(st.sent.OFFER ?? 0).toBe(0);
    const known = rack.addClient('br0', RESERVED_MAC);
    expect(udhcpcOnce(known, work, 'u8').find((l) => l.event === 'bound')?.ip).toBe('198.18.0.42');
  });
});
