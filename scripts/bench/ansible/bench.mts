/**
 * The Ansible benchmark (run it with scripts/bench/ansible/run.sh, never in CI): the same 20-task playbook
 * against N hosts (1) through the site agent (connection underlay.underlay.agent; N runner processes on
 * this host) and (2) over SSH to N sshd on 127.0.0.1 (ansible's ssh connection, pipelining on both).
 * One run each; prints wall times and the ratio SSH / agent (≥ 1.0 means the agent is as fast or faster).
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort, runProcess } from '../../../test/central/support.js';
import { HostRack } from '../../../test/ansible/host-rack.js';
import { agentAnsibleEnv, inventoryConfig } from '../../../test/ansible/agent-playbook.test-support.js';
import { haveCommand } from '../../../test/support/require.js';

const SIZES = (process.env.UL_BENCH_N ?? '1,10,100').split(',').map(Number);
const PLAYBOOK = `- hosts: all
  gather_facts: false
  tasks:
${Array.from({ length: 20 }, (_, i) => `    - ansible.builtin.command: echo task ${i + 1}\n      changed_when: false`).join('\n')}
`;

async function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const r = await runProcess(cmd, args, { cwd, env });
  if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return (performance.now() - t0) / 1000;
}

async function throughAgent(n: number, work: string): Promise<number> {
  const names = Array.from({ length: n }, (_, i) => `bench-${i + 1}`);
  const rack = await HostRack.start(names);
  try {
    writeFileSync(join(work, 'underlay.yml'), inventoryConfig());
    writeFileSync(join(work, 'bench.yml'), PLAYBOOK);
    const env = { ...agentAnsibleEnv({ centralUrl: rack.central.url, token: rack.operatorToken, caFile: rack.central.caPath, home: work }), ANSIBLE_FORKS: String(Math.min(n, 100)) };
    return await timed('ansible-playbook', ['-i', 'underlay.yml', 'bench.yml'], work, env);
  } finally {
    await rack.stop();
  }
}

async function overSsh(n: number, work: string): Promise<number | null> {
  const sshd = ['/usr/sbin/sshd', '/sbin/sshd'].find((p) => haveCommand(p));
  if (!sshd || !haveCommand('ssh-keygen')) return null;
  const dir = join(work, 'ssh');
  mkdirSync(dir, { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  execFileSync('cp', [join(dir, 'client_key.pub'), join(dir, 'authorized_keys')]);
  const procs: ChildProcess[] = [];
  // Also when the run is cut (a timeout or a signal ends the process without this function's finally).
  const stopAll = () => { for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM'); };
  process.once('exit', stopAll);
  try {
    const hosts: string[] = [];
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      const conf = join(dir, `sshd_${i}.conf`);
      writeFileSync(conf, [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `PidFile ${join(dir, `sshd_${i}.pid`)}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`, 'PermitRootLogin yes', 'StrictModes no', 'UsePAM no', 'MaxStartups 200', ''].join('\n'));
      procs.push(spawn(sshd, ['-D', '-e', '-f', conf], { stdio: 'ignore' }));
      hosts.push(`ssh-${i + 1} ansible_host=127.0.0.1 ansible_port=${port}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync(join(work, 'ssh.ini'), `[all]\n${hosts.join('\n')}\n`);
    writeFileSync(join(work, 'bench.yml'), PLAYBOOK);
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: work, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: String(Math.min(n, 100)),
      ANSIBLE_PRIVATE_KEY_FILE: join(dir, 'client_key'), ANSIBLE_REMOTE_USER: 'root', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3', ANSIBLE_NOCOLOR: '1' };
    return await timed('ansible-playbook', ['-i', 'ssh.ini', 'bench.yml'], work, env);
  } finally {
    stopAll();
    process.off('exit', stopAll);
  }
}

/** UL_BENCH_LEGS=agent or ssh runs one leg only (profiling); both by default. */
const LEGS = new Set((process.env.UL_BENCH_LEGS ?? 'agent,ssh').split(','));

it('20-task playbook: agent vs SSH', async () => {
  const rows: string[] = [];
  for (const n of SIZES) {
    const work = mkdtempSync(join(tmpdir(), `underlay-bench-ansible-${n}-`));
    try {
      const agent = LEGS.has('agent') ? await throughAgent(n, work) : NaN;
      // Printed at once (to stderr, which vitest does not hold back): a run cut later still shows this leg.
      if (LEGS.has('agent')) process.stderr.write(`N=${n}: agent leg ${agent.toFixed(1)} s (load ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
      const ssh = LEGS.has('ssh') ? await overSsh(n, work) : null;
      rows.push(`N=${n}: agent ${agent.toFixed(1)} s, ssh ${ssh === null ? 'skipped (no sshd / ssh-keygen)' : `${ssh.toFixed(1)} s, ratio ssh/agent ${(ssh / agent).toFixed(2)}×`}`);
      console.log(rows.at(-1));
      if (LEGS.has('agent')) expect(agent).toBeGreaterThan(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  console.log(['Ansible benchmark (20 tasks, one run each):', ...rows].join('\n'));
});
