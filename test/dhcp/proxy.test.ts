/**
 * proxyDHCP beside the site's own DHCP server (dnsmasq with `--dhcp-range` only, no boot options). A crafted
 * PXE client (the agent's codec over a UDP socket, from 0.0.0.0 like firmware) must see an address OFFER from
 * dnsmasq and a boot OFFER from the agent with no address (port 67), then get the boot file from the agent on
 * port 4011, answered to its own source port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkPrereqs } from '../support/require.js';
import type { NetNs } from '../support/netns.js';
import { closeDhcpSuite, openDhcpSuite, SERVER, ServerProc, type Built } from './harness.js';

const ready = checkPrereqs('dhcp proxy', { root: true, commands: ['ip', 'dnsmasq'] });

interface Summary {
  type: number;
  yiaddr: string;
  siaddr: string;
  file: string;
  serverId?: string;
  vendorClass?: string;
  vendor43?: string;
  leaseTime?: number;
}

describe.skipIf(!ready)('proxyDHCP beside dnsmasq', () => {
  let built: Built;
  let work: string;
  let rack: NetNs;
  let server: ServerProc;

  beforeAll(async () => {
    ({ built, work, rack } = openDhcpSuite('ul-dhcp-proxy-'));
    rack.spawn([
      'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', '--interface=br0', '--except-interface=lo',
      '--dhcp-range=198.18.0.150,198.18.0.199,255.255.255.0,10m', `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`, `--pid-file=${join(work, 'dnsmasq.pid')}`, '--log-dhcp', `--log-facility=${join(work, 'dnsmasq.log')}`,
    ]);
    server = await ServerProc.start(rack, built, { mode: 'proxy', interface: 'br0', serverAddress: SERVER, subnets: [], reservations: [], machines: { '02:00:00:00:02:03': { known: true, netboot: false } } }, work);
  });

  afterAll(() => closeDhcpSuite({ built, work, rack }, server));

  function pxeClient(mac: string, arch: number): { offers: Summary[]; acks?: Summary[]; proxyAck?: Summary | null; sourcePort?: number } {
    const c = rack.addClient('br0', mac);
    c.exec(['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
    return JSON.parse(c.exec(['node', built.client, JSON.stringify({ mode: 'pxe', mac, arch })]));
  }

  it('BIOS PXE client: address from dnsmasq, boot file (and no address) from the proxy on 67 and 4011', () => {
    const r = pxeClient('02:00:00:00:02:01', 0);
    const fromDnsmasq = r.offers.find((o) => o.yiaddr !== '0.0.0.0');
    const fromProxy = r.offers.find((o) => o.yiaddr === '0.0.0.0');
    expect(fromDnsmasq?.type).toBe(2);
    expect(fromDnsmasq?.file).toBe('');
    expect(fromProxy).toMatchObject({ type: 2, yiaddr: '0.0.0.0', siaddr: SERVER, file: 'undionly.kpxe', serverId: SERVER, vendorClass: 'PXEClient', vendor43: '060108ff' });
    expect(fromProxy?.leaseTime).toBeUndefined();
    expect(r.acks?.some((a) => a.type === 5 && a.yiaddr === fromDnsmasq?.yiaddr)).toBe(true);
    // Port 4011: the ACK came back to the client's own (ephemeral) source port with the boot file, no address.
    expect(r.sourcePort).not.toBe(68);
    expect(r.proxyAck).toMatchObject({ type: 5, yiaddr: '0.0.0.0', file: 'undionly.kpxe', siaddr: SERVER, vendorClass: 'PXEClient' });
  });

  it('x86-64 UEFI PXE client gets ipxe.efi', () => {
    const r = pxeClient('02:00:00:00:02:02', 7);
    expect(r.offers.find((o) => o.yiaddr === '0.0.0.0')?.file).toBe('ipxe.efi');
    expect(r.proxyAck?.file).toBe('ipxe.efi');
  });

  it('a machine whose netboot is disallowed gets nothing from the proxy', async () => {
    const r = pxeClient('02:00:00:00:02:03', 0);
    expect(r.offers.some((o) => o.yiaddr === '0.0.0.0')).toBe(false);
    await server.leases();
    const stats = server.events.at(-1)!.stats as { sent: Record<string, number>; byType: Record<string, number> };
    expect(stats.byType.DISCOVER).toBe(3); // the proxy saw all three clients' DISCOVERs…
    expect(stats.sent.OFFER).toBe(2); // …and answered only the two netboot ones
  });
});
