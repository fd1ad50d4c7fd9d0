/**
 * proxyDHCP on real firmware: the site's own DHCP server (dnsmasq: addresses only, no boot options) hands out
 * the address; the agent in `--dhcp proxy` mode adds only the boot file (port 67 offer, then the port 4011
 * ProxyDHCP request). SeaBIOS + iPXE ROM must get its address from dnsmasq and its script from the agent,
 * then boot the discovery image (which takes its own lease from dnsmasq too).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, OVMF_CODE, OVMF_VARS, RACK_PREREQS, Rack, until, type Vm } from './rack.js';

const ready = checkPrereqs('e2e proxyDHCP boot', { ...RACK_PREREQS, commands: [...RACK_PREREQS.commands, 'dnsmasq'], files: [...RACK_PREREQS.files, OVMF_CODE, OVMF_VARS] });
const MAC = '52:54:00:e2:9c:01';
const SITE_DHCP = '198.18.0.2';

describe.skipIf(!ready)('proxyDHCP beside dnsmasq: address from dnsmasq, boot file from the agent', () => {
  let rack: Rack;
  let vm: Vm;
  let leaseFile: string;
  let dnsmasqLog: string;

  beforeAll(async () => {
    rack = await Rack.start({
      prefix: 'ulprx',
      dhcp: 'proxy',
      agentLogLevel: 'debug',
      beforeAgent: (r) => {
        leaseFile = join(r.work, 'dnsmasq.leases');
        dnsmasqLog = join(r.work, 'dnsmasq.log');
        // The site's DHCP server is another host on the segment (198.18.0.2): were it in the agent's
        // namespace, its server identifier would be the agent's own address and iPXE would never send the
        // ProxyDHCP request to port 4011. Addresses only (no boot options); --port=0 turns its DNS off.
        const host = r.ns.addClient('br0');
        host.exec(['ip', 'addr', 'add', `${SITE_DHCP}/24`, 'dev', 'eth0']);
        r.spawnLogged(host, [
          'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', '--interface=eth0', '--except-interface=lo',
          '--dhcp-range=198.18.0.150,198.18.0.199,255.255.255.0,10m', `--dhcp-leasefile=${leaseFile}`, `--pid-file=${join(r.work, 'dnsmasq.pid')}`,
          '--log-dhcp', `--log-facility=${dnsmasqLog}`,
        ], join(r.work, 'dnsmasq.out'));
      },
    });
    await until(() => existsSync(dnsmasqLog) && readFileSync(dnsmasqLog, 'utf8').includes('DHCP, IP range'), 'dnsmasq to serve DHCP', 30_000);
    vm = rack.bootVm({ name: 'proxy', firmware: 'uefi', mac: MAC });
  });

  afterAll(() => {
    rack?.destroy();
  });

  it('the firmware (PXEClient, arch 7) gets ipxe.efi from the agent\'s proxy offer, with no address', async () => {
    // OVMF: ~10 s to 2.5 min of software emulation to its first DHCPDISCOVER; the bound is hang protection.
    const offer = await rack.waitForAgent((l) => l.msg === 'dhcp: reply sent' && l.type === 'OFFER' && l.file === 'ipxe.efi', 'a proxy OFFER with ipxe.efi', 600_000, vm);
    expect(offer.yiaddr).toBe('0.0.0.0');
    expect(offer.to).toMatchObject({ port: 68 });
    const done = await rack.waitForAgent((l) => l.msg === 'tftp transfer complete' && l.file === 'ipxe.efi', 'ipxe.efi over TFTP', 300_000, vm);
    expect(done.bytes).toBe(statSync('/usr/lib/ipxe/ipxe.efi').size);
    expect(rack.agentLines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('tftp') && (l.level ?? 0) >= 40)).toEqual([]);
    // A ProxyDHCP request on port 4011 (the firmware may send one) must be answered by unicast to its source.
    const proxyReqs = rack.agentLines().filter((l) => l.msg === 'dhcp: request received' && l.listener === 'proxy' && l.mac === MAC);
    const proxyAcks = rack.agentLines().filter((l) => l.msg === 'dhcp: reply sent' && l.type === 'ACK');
    console.log(`port 4011: ${proxyReqs.length} request(s), ${proxyAcks.length} ACK(s)`);
    expect(proxyAcks.length).toBe(proxyReqs.length);
    for (const a of proxyAcks) {
      expect(a.yiaddr).toBe('0.0.0.0');
      expect(a.to).toMatchObject({ broadcast: false });
    }
  });

  it('iPXE (user class iPXE) gets the script URL in the proxy offer', async () => {
    const offer = await rack.waitForAgent((l) => l.msg === 'dhcp: reply sent' && l.type === 'OFFER' && l.file === `http://${AGENT_ADDRESS}:8080/boot.ipxe`, 'a proxy OFFER with the script URL', 300_000, vm);
    expect(offer.yiaddr).toBe('0.0.0.0');
  });

  it('the VM got its address from dnsmasq and its script from the agent', async () => {
    const served = await rack.waitForAgent((l) => l.msg === 'served iPXE script' && l.mac === MAC, 'the iPXE script for the VM', 300_000, vm);
    expect(served.platform).toBe('efi');
    const lease = await until(() => readFileSync(leaseFile, 'utf8').split('\n').find((l) => l.split(' ')[1] === MAC), 'the VM in dnsmasq\'s lease file', 60_000);
    expect(lease.split(' ')[2]).toMatch(/^198\.18\.0\.1(5\d|[6-9]\d)$/);
    expect(readFileSync(dnsmasqLog, 'utf8')).toMatch(new RegExp(`DHCPACK\\(eth0\\) ${lease.split(' ')[2]!.replace(/\./g, '\\.')} ${MAC}`));
    // The agent handed out no address.
    expect(rack.leases(MAC)).toEqual([]);
  });

  it('the discovery image boots on the dnsmasq lease and reports to the agent', async () => {
    const m = await vm.waitForSerial(/underlay: address (\S+) on \S+[\s\S]*underlay: discovered ([0-9a-f:]{17})/, 'the discovery line', 600_000);
    expect(m[1]).toMatch(/^198\.18\.0\.1(5\d|[6-9]\d)\/24$/);
    expect(m[2]).toBe(MAC);
    await until(() => rack.machines(MAC)[0], 'the machine at the central', 120_000);
  });
});
