/**
 * Running the issue-15 playbook (test/ansible/playbook/site.yml: ping, setup, copy, template, command,
 * systemd, fetch and a handler) through the site agent with the collection's two plugins. Used by
 * test/ansible/agent-connection.test.ts against runner processes on this host, and meant for the deploy
 * test to call against real deployed VMs (no SSH server on them):
 *
 *   const r = await runAgentPlaybook({ centralUrl, token: operatorToken, caFile, machines: ['vm-bios', 'vm-uefi'] });
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
  const r = await runProcess('ansible-playbook', args, { cwd: workDir, env: agentAnsibleEnv({ ...o, home: workDir }) });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}`, workDir };
}
