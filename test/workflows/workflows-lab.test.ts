/**
 * Workflows in the lab (issue 14): three real machines (QEMU TCG, SeaBIOS + iPXE) PXE boot into the
 * discovery environment of one rack (a real central and site agent in a namespace). One workflow, one run
 * per machine: stage 1 registers each machine as a member of `demo-etcd` (its runner starts the heartbeat
 * loop, which reports through the agent with the boot's session); stage 2 waits until 3 members pass,
 * then each machine writes the member list it received into a file and reports it.
 * One machine's check fails at first (a file on that machine says so): the other two wait at the gate,
 * none passes early. While they wait the central is killed (-9) and started again and the agent link is
 * cut and restored; then the third machine heals and every run completes, each having seen all three
 * addresses, with one task per step (nothing ran twice).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RACK_PREREQS, Rack, SITE, until, type Vm } from '../e2e/rack.js';
import { checkPrereqs } from '../support/require.js';

const NODES = [
  { name: 'node-1', mac: '52:54:00:77:00:01' },
  { name: 'node-2', mac: '52:54:00:77:00:02' },
  { name: 'node-3', mac: '52:54:00:77:00:03' }, // the one whose check fails at first
];
const MIN = 60_000;
const TTL_SEC = 15;
const WORKFLOW = `name: demo-cluster
stages:
  - name: register
    steps:
      - action: register-service
        with: {service: demo-etcd, port: 2379, ttl: ${TTL_SEC}s, check: "test ! -e /run/ul-sick"}
  - name: members
    wait: {service: demo-etcd, passing: 3}
    steps:
      - name: write-members
        task: run-script
        payload:
          script: |
            cat >/run/demo-etcd-members <<'EOF'
            {% for m in services['demo-etcd'].members %}{{ m.address }}
            {% endfor %}EOF
            cat /run/demo-etcd-members
`;

interface Step {
  name: string;
  state: string;
  taskIds: string[];
  output?: string;
  attempts?: number;
}
interface Run {
  id: string;
  machineName: string;
  status: { state: string };
  stages: Array<{ name: string; gate?: { state: string; waitingFor?: string }; steps: Step[] }>;
}
interface Member {
  id: string;
  machine?: string;
  address: string;
  status: string;
}

const ready = checkPrereqs('workflows lab (three machines)', RACK_PREREQS);

describe.skipIf(!ready)('workflows in the lab: three machines, cluster linking through the service registry', () => {
  let rack: Rack;
  const vms: Vm[] = [];
  const ids = new Map<string, string>();
  const addresses = new Map<string, string>();

  const runs = () => (rack.cliJson(['runs', 'list', '--workflow', 'demo-cluster']) as { items: Run[] }).items;
  const members = () => (rack.cliJson(['services', 'show', 'demo-etcd']) as { members: Member[] }).members;
  const runScript = async (node: string, script: string): Promise<string> => {
    const file = join(rack.work, `${node}-${Date.now()}.sh`);
    writeFileSync(file, script);
    const t = rack.cliJson(['tasks', 'create', '--site', SITE, '--machine', ids.get(node)!, '--kind', 'run-script', '--script-file', file]) as { id: string };
    const done = await until(
      () => {
        const x = rack.cliJson(['tasks', 'show', t.id]) as { state: string; output?: string };
        return ['succeeded', 'failed', 'rejected', 'expired'].includes(x.state) && x;
      },
      `run-script on ${node}`,
      10 * MIN,
      { intervalMs: 1000 },
    );
    expect(done.state, done.output).toBe('succeeded');
    return done.output ?? '';
  };

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulwf', dhcp: 'full' });
    for (const n of NODES) vms.push(rack.bootVm({ name: n.name, firmware: 'bios', mac: n.mac }));
    for (const n of NODES) {
      const m = await until(
        () => (rack.cliJson(['machines', 'list']) as { items: Array<{ id: string; macs: string[]; state: string; address?: string }> }).items.find((x) => x.macs.includes(n.mac) && x.state === 'ready'),
        `${n.name} discovered and ready`,
        20 * MIN,
        { intervalMs: 2000, diag: () => vms.map((v) => v.serial().slice(-1500)).join('\n---\n') },
      );
      rack.cli(['machines', 'update', m.id, '--name', n.name]);
      ids.set(n.name, m.id);
    }
    for (const n of NODES) {
      const m = rack.cliJson(['machines', 'show', n.name]) as { addresses?: Array<{ address: string; source: string }> };
      const v4 = m.addresses?.find((a) => /^198\.18\.0\.\d+$/.test(a.address))?.address; // from its lease or its discovery report
      expect(v4, `${n.name} has its address: ${JSON.stringify(m.addresses)}`).toMatch(/^198\.18\.0\.\d+$/);
      addresses.set(n.name, v4!);
    }
    writeFileSync(join(rack.work, 'demo-cluster.yaml'), WORKFLOW);
    rack.cli(['workflows', 'create', '-f', join(rack.work, 'demo-cluster.yaml')]);
  }, 40 * MIN);

  afterAll(() => rack?.destroy());

  it('stage 1 registers all three; with one member failing its check, nobody passes the gate — across a central kill -9 and a cut agent link', async () => {
    await runScript('node-3', 'touch /run/ul-sick\n');
    const started = rack.cliJson(['machines', 'workflow', '--workflow', 'demo-cluster', '--selector', `site=${SITE}`]) as { items: Run[] };
    expect(started.items.map((r) => r.machineName).sort()).toEqual(['node-1', 'node-2', 'node-3']);

    // Two members pass (their machines' own heartbeat loops), node-3's check fails: critical.
    await until(
      () => {
        const ms = members();
        return ms.length === 3 && ms.filter((m) => m.status === 'passing').length === 2 && ms.find((m) => m.address === addresses.get('node-3'))?.status === 'critical' && ms;
      },
      'two passing members and node-3 critical',
      10 * MIN,
      { intervalMs: 2000, diag: () => JSON.stringify(members()) },
    );
    const waiting = await until(() => runs().every((r) => r.status.state === 'waiting') && runs(), 'every run waiting at the gate', 5 * MIN, { intervalMs: 1000 });
    expect(waiting[0]!.stages[1]!.gate).toMatchObject({ state: 'waiting', waitingFor: 'service demo-etcd to have 3 passing members' });

    // Mid-stage: the central dies and comes back; the site's link is cut and restored.
    const links = () => rack.agentLines().filter((l) => l.msg === 'link ready').length;
    await rack.restartCentral();
    await rack.stopAgent();
    await new Promise((r) => setTimeout(r, 5000));
    const before = links();
    await rack.startAgent();
    await until(() => links() > before, 'the agent back on the link', 5 * MIN, { intervalMs: 1000 });

    // Well over a TTL later nobody has passed: node-3 is still failing its check.
    await until(
      () => {
        const ms = members();
        return ms.filter((m) => m.status === 'passing').length === 2 && ms;
      },
      'two members passing again after the outage',
      10 * MIN,
      { intervalMs: 2000, diag: () => JSON.stringify(members()) },
    );
    await new Promise((r) => setTimeout(r, 2 * TTL_SEC * 1000));
    const still = runs();
    expect(still.map((r) => r.status.state)).toEqual(['waiting', 'waiting', 'waiting']);
    for (const r of still) expect(r.stages[1]!.steps[0]!.taskIds).toEqual([]);
  });

  it('node-3 heals: the gate opens, every machine wrote all three addresses, every run succeeded, no step ran twice', async () => {
    await runScript('node-3', 'rm -f /run/ul-sick\n');
    const done = await until(() => runs().every((r) => r.status.state === 'succeeded') && runs(), 'every run succeeded', 15 * MIN, {
      intervalMs: 2000,
      diag: () => JSON.stringify(runs().map((r) => [r.machineName, r.status, r.stages.map((s) => s.steps.map((x) => [x.name, x.state]))])),
    });
    const want = [...addresses.values()].sort();
    for (const r of done) {
      const step = r.stages[1]!.steps[0]!;
      expect(step.state).toBe('succeeded');
      expect(step.output!.trim().split('\n').sort(), `${r.machineName} saw every member`).toEqual(want);
      expect(r.stages.flatMap((s) => s.steps.flatMap((x) => x.taskIds))).toHaveLength(2); // one task per step
    }
    // The file is on each machine, written by its own run.
    for (const n of NODES) expect((await runScript(n.name, 'cat /run/demo-etcd-members\n')).trim().split('\n').sort()).toEqual(want);
    // Per machine: the sick/heal probes, the heartbeat task, the member task and the read-back above; nothing else.
    for (const n of NODES) {
      const tasks = (rack.cliJson(['tasks', 'list', '--machine', ids.get(n.name)!, '--kind', 'run-script']) as { items: Array<{ kind: string }> }).items;
      expect(tasks.length, n.name).toBe(n.name === 'node-3' ? 5 : 3);
    }
  });
});
