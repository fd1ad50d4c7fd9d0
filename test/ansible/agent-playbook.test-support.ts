/**
 * Running the issue-15 playbook (test/ansible/playbook/site.yml: ping, setup, copy, template, command,
 * systemd, fetch and a handler) through the site agent with the collection's two plugins. Used by
 * test/ansible/agent-connection.test.ts against runner processes on this host, and meant for the deploy
 * test to call against real deployed VMs (no SSH server on them):
 *
 *   const r = await runAgentPlaybook({ centralUrl, token: operatorToken, caFile, machines: ['vm-bios', 'vm-uefi'], netns: rack.ns.name });
 *   expect(r.code, r.output).toBe(0);
 *
 * On a real machine the play writes /etc/underlay-demo/{copied.txt,demo.conf,handler-ran} and, where
 * systemd runs, /etc/systemd/system/underlay-demo.service (started: /var/lib/underlay-demo.ran).
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, runProcess } from '../central/support.js';

export const COLLECTIONS = join(REPO, 'scripts/ansible/collections');
const PLAYBOOK_DIR = join(REPO, 'test/ansible/playbook');

export interface AgentPlaybookOptions {
  centralUrl: string;
  /** An operator (or admin) token: the connection plugin creates tasks. */
  token: string;
  /** The central's CA (PEM). */
  caFile: string;
  /** Inventory host names (machine names) to run on. */
  machines: string[];
  /** Where to write underlay.yml, the playbook and fetched files (a fresh temp dir by default). */
  workDir?: string;
  /** Extra variables (-e), e.g. { ul_root: '/tmp/m1' } per host via host_vars instead. */
  extraVars?: Record<string, unknown>;
  /** Per-host variables written to host_vars/<name>.yml (e.g. ul_root for runners sharing one host). */
  hostVars?: Record<string, Record<string, unknown>>;
  /** Extra lines for underlay.yml (keyed_groups, compose, filters). */
  inventoryExtra?: string;
  /** More ansible-playbook arguments (e.g. ['-v']). */
  args?: string[];
  /**
   * Run ansible-playbook inside this network namespace (`ip netns exec NS …`: the deploy test's central
   * listens inside its rack's namespace). Needs root, as `ip netns exec` does.
   */
  netns?: string;
}

export interface AgentPlaybookResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for assertion messages. */
  output: string;
  workDir: string;
}

/** underlay.yml for the inventory plugin with every host on the agent connection. */
export function inventoryConfig(extra = ''): string {
  return ['plugin: underlay.underlay.inventory', 'compose:', "  ansible_connection: \"'underlay.underlay.agent'\"", extra].join('\n') + '\n';
}

/** Environment for ansible-* with the collection and the central's connection; nothing else of ours leaks in. */
export function agentAnsibleEnv(o: { centralUrl: string; token: string; caFile: string; home: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('UNDERLAY_') && !k.startsWith('ANSIBLE_')) env[k] = v;
  return {
    ...env,
    HOME: o.home,
    ANSIBLE_COLLECTIONS_PATH: COLLECTIONS,
    ANSIBLE_LOCAL_TEMP: join(o.home, 'ansible-tmp'),
    ANSIBLE_HOME: join(o.home, 'ansible-home'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3', // Debian's; interpreter discovery costs a round trip per host
    UNDERLAY_URL: o.centralUrl,
    UNDERLAY_TOKEN: o.token,
    UNDERLAY_CA: o.caFile,
  };
}

/** Writes underlay.yml and the playbook into a work dir and runs ansible-playbook on `machines`. */
export async function runAgentPlaybook(o: AgentPlaybookOptions): Promise<AgentPlaybookResult> {
  const workDir = o.workDir ?? mkdtempSync(join(tmpdir(), 'underlay-agent-playbook-'));
  mkdirSync(workDir, { recursive: true });
  cpSync(PLAYBOOK_DIR, workDir, { recursive: true });
  writeFileSync(join(workDir, 'underlay.yml'), inventoryConfig(o.inventoryExtra));
  if (o.hostVars) {
    mkdirSync(join(workDir, 'host_vars'), { recursive: true });
    for (const [h, vars] of Object.entries(o.hostVars)) writeFileSync(join(workDir, 'host_vars', `${h}.yml`), JSON.stringify(vars));
  }
  const args = ['-i', 'underlay.yml', 'site.yml', '--limit', o.machines.join(','), '-e', JSON.stringify({ ul_fetch_dir: join(workDir, 'fetched'), ...o.extraVars }), ...(o.args ?? [])];
  const env = agentAnsibleEnv({ ...o, home: workDir });
  const r = o.netns
    ? await runProcess('ip', ['netns', 'exec', o.netns, 'ansible-playbook', ...args], { cwd: workDir, env })
    : await runProcess('ansible-playbook', args, { cwd: workDir, env });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}`, workDir };
}

/** What each play task did per host, from ansible-playbook's default output: { 'copy a file': { 'node-a': 'changed' } }. */
export function taskResults(stdout: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let task: string | undefined;
  for (const line of stdout.split('\n')) {
    const head = /^(?:TASK|RUNNING HANDLER) \[(.+)\] \*+$/.exec(line);
    if (head) {
      task = head[1]!;
      out[task] ??= {};
      continue;
    }
    const result = /^(ok|changed|skipping|fatal|failed|unreachable): \[([^\]]+)\]/.exec(line);
    if (task && result) out[task]![result[2]!] = result[1]!;
  }
  return out;
}

/** One exec round trip, split at the hops the central records and the runner logs (ms). */
export interface RoundTrip {
  /** POST /api/v1/tasks until the task is stored (validated, signed, fsync'd). */
  create: number;
  /** Stored → pushed to the agent over its WebSocket. */
  toAgent: number;
  /** Pushed → the agent recorded it and acknowledged (accepted). */
  agentAccept: number;
  /** The runner, from the answer to its long poll to its report acknowledged ("handled in"). */
  runner: number;
  /** The rest between accepted and final: hand-over to the runner's long poll, and the report's way agent → central. */
  handoverAndReport: number;
  /** Final in the central → the blocking GET …?wait= answered. */
  answer: number;
  total: number;
}

/** A round trip's hops from the final task (createdAt, history) and the runner's log line for it. */
export function roundTrip(t: { id: string; createdAt: string; history: { state: string; at: string }[] }, t0: number, t1: number, runnerLog: string): RoundTrip {
  const at = (state: string) => Date.parse(t.history.find((h) => h.state === state)?.at ?? t.createdAt);
  const runner = Number(new RegExp(`task ${t.id} \\(\\S+\\) handled in (\\d+) ms`).exec(runnerLog)?.[1] ?? NaN);
  const final = Date.parse(t.history.at(-1)!.at);
  const queued = Date.parse(t.createdAt);
  return {
    create: queued - t0,
    toAgent: at('delivered') - queued,
    agentAccept: at('accepted') - at('delivered'),
    runner,
    handoverAndReport: final - at('accepted') - runner,
    answer: t1 - final,
    total: t1 - t0,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** "total 412 = create 9 + to agent 4 + …" with the median of each hop. */
export function formatHops(hops: RoundTrip[]): string {
  const m = (k: keyof RoundTrip) => median(hops.map((h) => h[k])).toFixed(0);
  return `total ${m('total')} = create ${m('create')} + to agent ${m('toAgent')} + agent accepts ${m('agentAccept')} + runner ${m('runner')} + hand-over and report ${m('handoverAndReport')} + answer ${m('answer')} (medians; the runner's at 10 ms resolution)`;
}
