/**
 * Relayed boot on real firmware: the VM sits on a second segment (br1, 198.18.1.0/24) behind a router
 * namespace running ISC dhcrelay towards the agent at 198.18.0.1. The agent's site has a subnet for that
 * segment; SeaBIOS + iPXE ROM must get an address from it through the relay, then fetch the agent's HTTP
 * script (and the discovery image) through the router.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, RACK_PREREQS, Rack, until, type Vm } from './rack.js';

const ready = checkPrereqs('e2e relayed boot', { ...RACK_PREREQS, commands: [...RACK_PREREQS.commands, 'dhcrelay'] });
const MAC = '52:54:00:e2:7e:01';

describe.skipIf(!ready)('DHCP relay: a VM on another segment boots from the agent through dhcrelay', () => {
  let rack: Rack;
  let vm: Vm;

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulrly', dhcp: 'full', relay: true, agentLogLevel: 'debug' });
    vm = rack.bootVm({ name: 'relay', firmware: 'bios', mac: MAC, segment: 'br1' });
  });

  afterAll(() => {
    rack?.destroy();
  });

  it('the relayed request gets an address from the relay segment\'s subnet and the script URL', async () => {
    const req = await rack.waitForAgent((l) => l.msg === 'dhcp: request received' && l.mac === MAC && l.giaddr === '198.18.1.1', 'a relayed request', 300_000, vm);
    expect(req.from).toEqual({ address: '198.18.0.2', port: 67 });
    const ack = await rack.waitForAgent(
      (l) => l.msg === 'dhcp: reply sent' && l.type === 'ACK' && (l.to as { address?: string }).address === '198.18.1.1',
      'an ACK to the relay',
      300_000,
      vm,
    );
    expect(String(ack.yiaddr)).toMatch(/^198\.18\.1\.1\d\d$/);
    expect(ack.file).toBe(`http://${AGENT_ADDRESS}:8080/boot.ipxe`);
    const lease = await until(() => rack.leases(MAC).find((l) => l.state === 'lease'), 'the lease at the central', 120_000);
    expect(lease.subnet).toBe('198.18.1.0/24');
    expect(lease.address).toBe(ack.yiaddr);
  });

  it('iPXE fetches the script through the router, and discovery reports back', async () => {
    const served = await rack.waitForAgent((l) => l.msg === 'served iPXE script' && l.mac === MAC, 'the iPXE script for the VM', 300_000, vm);
    expect(served.platform).toBe('pcbios');
    const m = await vm.waitForSerial(/underlay: address (\S+) on \S+[\s\S]*underlay: discovered ([0-9a-f:]{17})/, 'the discovery line', 600_000);
    expect(m[1]).toMatch(/^198\.18\.1\.1\d\d\/24$/);
    expect(m[2]).toBe(MAC);
  });
});
