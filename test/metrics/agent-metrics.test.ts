// Issue 19: the agent's Prometheus /metrics after a real DHCP exchange (busybox udhcpc), a TFTP transfer
// (busybox tftp) and HTTP boot requests, with a real central (host loopback, reached through the lab's
// unix-socket forwarders) and a real `underlay agent run` in a network namespace. The metrics listener is
// on loopback by default: not reachable on the provisioning address.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs } from '../support/netns.js';
import { checkPrereqs } from '../support/require.js';
import { api, cleanEnv, CLI, joinAgent, spawnCentral, waitFor, type CentralProcess } from '../agent-link/support.js';
import { forwardCentral } from '../support/forward-central.js';
import { readUdhcpcLog, udhcpcScript } from '../dhcp/harness.js';
import { promSamples } from '../support/prometheus.js';

const ready = checkPrereqs('agent metrics (real agent, udhcpc, tftp)', { root: true, commands: ['ip', 'busybox', 'curl'] });
const AGENT_IP = '198.18.0.1';
const CLIENT_MAC = '02:00:00:19:00:01';


describe.skipIf(!ready)('agent /metrics (real agent in a namespace)', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-metrics-'));
  const procs: ChildProcess[] = [];
  let central: CentralProcess;
  let lab: NetNs;
  let client: NetNs;
  let agentLog = '';
  const scrape = () => lab.exec(['curl', '-sf', 'http://127.0.0.1:9464/metrics']);

  beforeAll(async () => {
    central = await spawnCentral();
    await api(central, 'POST', '/api/v1/sites', { name: 'dc1' });
    await api(central, 'POST', '/api/v1/subnets', { site: 'dc1', cidr: '198.18.0.0/24', range: { start: '198.18.0.100', end: '198.18.0.149' }, gateway: AGENT_IP, leaseTimeSec: 600 });

    lab = new NetNs('ulmet');
    lab.addBridge('br0', `${AGENT_IP}/24`);
    client = lab.addClient('br0', CLIENT_MAC);
    procs.push(...(await forwardCentral(lab, central.port, work)));

    const state = join(work, 'agent');
    await joinAgent(central, 'dc1', state, 'agent-metrics');
    const ipxe = join(work, 'ipxe');
    mkdirSync(ipxe);
    writeFileSync(join(ipxe, 'undionly.kpxe'), Buffer.alloc(70_000, 0x5a));
    // No --metrics-listen: the default (loopback).
    const agent = lab.spawn([process.execPath, CLI, 'agent', 'run', '--state', state, '--interface', 'br0', '--address', AGENT_IP, '--dhcp', 'full', '--ipxe-dir', ipxe], { env: cleanEnv({ UNDERLAY_LOG_LEVEL: 'info' }) });
    procs.push(agent);
    agent.stdout!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (agentLog += d));
    await waitFor('the agent serving DHCP with the site state', () => (agentLog.includes('DHCP serving') && agentLog.includes('desired state updated') && agentLog.includes('metrics listening') ? true : undefined), 60_000, 200).catch((e) => {
      throw new Error(`${(e as Error).message}\n${agentLog.slice(-3000)}`);
    });
  }, 120_000);

  afterAll(async () => {
    for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGKILL');
    lab?.destroy(); // and the client namespace with it
    await central?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('serves DHCP by subnet and type, pool usage, TFTP, HTTP boot, outbox and link series after real exchanges', async () => {
    const { script, log } = udhcpcScript(work, 'c1');
    client.exec(['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script]);
    expect(readUdhcpcLog(log).find((l) => l.event === 'bound')?.ip).toMatch(/^198\.18\.0\.1[0-4]\d$/);
    client.exec(['busybox', 'tftp', '-g', '-r', 'undionly.kpxe', '-l', join(work, 'got.kpxe'), AGENT_IP]);
    client.exec(['curl', '-sf', `http://${AGENT_IP}:8080/healthz`]);
    client.exec(['curl', '-s', '-o', '/dev/null', `http://${AGENT_IP}:8080/no-such-thing`]);

    const m = await waitFor('the lease event acknowledged and the transfer counted', () => {
      const s = promSamples(scrape());
      return s.get('underlay_agent_tftp_transfers_total{outcome="completed"}') === 1 && s.get('underlay_agent_outbox_records') === 0 ? s : undefined;
    }, 20_000, 250);
    const subnet = 'subnet="198.18.0.0/24"';
    expect(m.get(`underlay_agent_dhcp_requests_total{${subnet},type="discover"}`)).toBe(1);
    expect(m.get(`underlay_agent_dhcp_requests_total{${subnet},type="request"}`)).toBe(1);
    expect(m.get('underlay_agent_dhcp_replies_total{type="offer"}')).toBe(1);
    expect(m.get('underlay_agent_dhcp_replies_total{type="ack"}')).toBe(1);
    expect(m.get(`underlay_agent_dhcp_subnet_replies_total{${subnet},type="offer"}`)).toBe(1);
    expect(m.get(`underlay_agent_dhcp_subnet_replies_total{${subnet},type="ack"}`)).toBe(1);
    expect(m.get(`underlay_agent_dhcp_pool_addresses{${subnet}}`)).toBe(50);
    expect(m.get(`underlay_agent_dhcp_leases{${subnet},state="bound"}`)).toBe(1);
    expect(m.get('underlay_agent_tftp_bytes_sent_total')).toBe(70_000);
    expect(m.get('underlay_agent_tftp_retransmits_total')).toBe(0);
    expect(m.get('underlay_agent_http_requests_total{route="/healthz",status="200"}')).toBe(1);
    expect(m.get('underlay_agent_http_requests_total{route="unmatched",status="404"}')).toBe(1);
    expect(m.get('underlay_agent_link_up')).toBe(1);
    expect(m.get('underlay_agent_link_connects_total')).toBe(1);
    expect(m.get('underlay_agent_link_reconnects_total')).toBe(0);
    expect(m.get('underlay_agent_outbox_oldest_age_seconds')).toBe(0);
    expect(m.has('underlay_agent_process_cpu_seconds_total')).toBe(true);
  }, 60_000);

  it('is not reachable on the provisioning address by default', () => {
    expect(() => client.exec(['curl', '-sf', '--max-time', '3', `http://${AGENT_IP}:9464/metrics`])).toThrow();
    expect(() => lab.exec(['curl', '-sf', '--max-time', '3', `http://${AGENT_IP}:9464/metrics`])).toThrow();
    expect(scrape()).toContain('underlay_agent_dhcp_requests_total');
  });
});
