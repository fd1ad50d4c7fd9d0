/**
 * Relayed DHCP: client ─ br1 (198.18.1.0/24) ─ router running ISC dhcrelay ─ br0 (198.18.0.0/24) ─ server.
 * The client must get an address from the 198.18.1.0/24 subnet, the server must answer the relay by unicast
 * to giaddr:67 and echo option 82 unchanged, and a renewal sent straight to the server (ciaddr set, no relay)
 * must keep the address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkPrereqs } from '../support/require.js';
import type { NetNs } from '../support/netns.js';
import { selectDhcpIo } from '../../agent/dhcp/udp.js';
import { closeDhcpSuite, openDhcpSuite, readUdhcpcLog, SERVER, ServerProc, udhcpcOnce, udhcpcScript, until, type Built } from './harness.js';

const ready = checkPrereqs('dhcp relay', { root: true, commands: ['ip', 'busybox', 'dhcrelay'] });

describe.skipIf(!ready).each([
  { io: 'auto' as const, kind: selectDhcpIo('auto').kind },
  { io: 'js' as const, kind: 'js' as const },
])('DHCP through dhcrelay, $kind sockets', ({ io, kind }) => {
  let built: Built;
  let work: string;
  let rack: NetNs;
  let router: NetNs;
  let server: ServerProc;

  beforeAll(async () => {
    ({ built, work, rack } = openDhcpSuite('ul-dhcp-relay-'));
    router = rack.addClient('br0');
    router.exec(['ip', 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0']);
    router.addBridge('br1', '198.18.1.1/24');
    router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    rack.exec(['ip', 'route', 'add', '198.18.1.0/24', 'via', '198.18.0.2']);
    server = await ServerProc.start(
      rack,
      built,
      {
        mode: 'full',
        interface: 'br0',
        serverAddress: SERVER,
        subnets: [
          { cidr: '198.18.0.0/24', range: { start: '198.18.0.100', end: '198.18.0.150' }, gateway: '198.18.0.1', dns: ['198.18.0.1'] },
          { cidr: '198.18.1.0/24', range: { start: '198.18.1.100', end: '198.18.1.150' }, gateway: '198.18.1.1', dns: ['198.18.0.1'], leaseTimeSec: 700 },
        ],
        reservations: [],
        leaseFile: join(work, 'leases.jsonl'),
        io,
      },
      work,
    );
    // -a: add option 82 (circuit id = interface); -D: drop replies whose option 82 does not match.
    router.spawn(['dhcrelay', '-4', '-d', '-a', '-D', '-pf', join(work, 'dhcrelay.pid'), '-iu', 'eth0', '-id', 'br1', SERVER]);
  });

  afterAll(() => closeDhcpSuite({ built, work, rack }, server));

  it('the client gets an address from the relay\'s subnet; replies go to giaddr:67 with option 82 echoed', async () => {
    const client = router.addClient('br1', '02:00:00:00:01:01');
    // dhcrelay needs a moment to open its sockets; udhcpc retries (-t 5).
    const bound = await until(() => {
      try {
        return udhcpcOnce(client, work, `relay-${Date.now()}`).find((l) => l.event === 'bound');
      } catch {
        return undefined;
      }
    }, 'a lease through the relay', 10, 500);
    expect(bound.ip!.startsWith('198.18.1.')).toBe(true);
    const last = Number(bound.ip!.split('.')[3]);
    expect(last).toBeGreaterThanOrEqual(100);
    expect(last).toBeLessThanOrEqual(150);
    expect(bound.router).toBe('198.18.1.1');
    expect(bound.lease).toBe('700');
    expect(bound.serverid).toBe(SERVER);
    expect(server.events.find((e) => e.event === 'ready')!.io).toBe(kind);

    const lines = () => server.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const received = await until(() => lines().find((l) => l.msg === 'dhcp: request received' && l.giaddr === '198.18.1.1' && l.type === 'REQUEST'), 'relayed REQUEST');
    expect(received.from).toEqual({ address: '198.18.0.2', port: 67 });
    expect(received.to).toBe(SERVER); // arrived on the unicast socket: the address the relay targeted
    expect(typeof received.opt82).toBe('string');
    const sent = await until(() => lines().find((l) => l.msg === 'dhcp: reply sent' && l.type === 'ACK' && (l.to as { address: string }).address === '198.18.1.1'), 'ACK to the relay');
    expect(sent.to).toEqual({ address: '198.18.1.1', port: 67, broadcast: false });
    expect(sent.from).toBe(SERVER);
    expect(sent.opt82).toBe(received.opt82);
    await server.waitFor((e) => e.event === 'lease-event' && e.type === 'lease' && e.address === bound.ip && e.subnet === '198.18.1.0/24', 'lease event on the relayed subnet');
  });

  it('a renewal sent straight to the server (no relay, ciaddr set) keeps the address', async () => {
    const client = router.addClient('br1', '02:00:00:00:01:02');
    const { script, log } = udhcpcScript(work, 'relay-renew');
    const p = client.spawn(['busybox', 'udhcpc', '-i', 'eth0', '-f', '-t', '5', '-T', '2', '-s', script]);
    try {
      const bound = await until(() => readUdhcpcLog(log).find((l) => l.event === 'bound'), 'bound through the relay');
      expect(bound.ip!.startsWith('198.18.1.')).toBe(true);
      client.exec(['ip', 'route', 'add', 'default', 'via', '198.18.1.1']);
      process.kill(p.pid!, 'SIGUSR1');
      const renew = await until(() => readUdhcpcLog(log).find((l) => l.event === 'renew'), 'renew');
      expect(renew.ip).toBe(bound.ip);
      const direct = await until(
        () => server.stderr().split('\n').find((l) => l.includes('"type":"REQUEST"') && l.includes(`"ciaddr":"${bound.ip}"`) && l.includes('"giaddr":"0.0.0.0"')),
        'direct renewal',
      );
      expect(direct).toContain(`"from":{"address":"${bound.ip}"`);
    } finally {
      process.kill(p.pid!, 'SIGKILL');
    }
  });
});
