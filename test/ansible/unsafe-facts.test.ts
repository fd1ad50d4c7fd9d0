import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCentrals, REPO, spawnCentral, type CentralProcess } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';
import { ansibleEnv, run, SCRIPT } from './fleet.js';

/**
 * Facts are data, never templates (issue 11): a machine whose facts carry Jinja is put in the inventory,
 * then the real ansible-playbook prints and copies those facts, once through the inventory script and
 * once through the inventory plugin (underlay.underlay.inventory, scripts/ansible/collections). Every
 * payload must come out verbatim and none of them may run on the controller: each would create its own
 * marker file, and no marker file may exist afterwards. An operator param carrying a template is the
 * control: it is rendered, so templating was on in that very run.
 */
const ready = checkPrereqs('ansible unsafe facts', { commands: ['ansible-inventory', 'ansible-playbook'] });

describe.skipIf(!ready)('machine facts carrying Jinja reach a real ansible-playbook as data', () => {
  let central: CentralProcess;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let marks: string;
  const payload: Record<string, string> = {};

  beforeAll(async () => {
    central = await spawnCentral();
    home = mkdtempSync(join(tmpdir(), 'underlay-unsafe-'));
    marks = join(home, 'marks');
    mkdirSync(marks);
    env = ansibleEnv(central, home, { ANSIBLE_COLLECTIONS_PATH: join(REPO, 'scripts/ansible/collections') });
    writeFileSync(join(home, 'underlay.yml'), 'plugin: underlay.underlay.inventory\n');
    const touch = (name: string) => `lookup('pipe','touch ${join(marks, name)}')`;
    Object.assign(payload, {
      expr: `{{ ${touch('expr')} }}`,
      stmt: `{% if true %}{{ ${touch('stmt')} }}{% endif %}`,
      loop: `{% for i in range(1) %}{{ ${touch('loop')} }}{% endfor %}`,
      query: `{{ query('pipe', 'touch ${join(marks, 'query')}') }}`,
      // Text for a template that switches its delimiters to [[ ]]; ansible-core 2.14 does not evaluate it even
      // unmarked (checked on main), but it must come through verbatim like the rest.
      brackets: `[[ ${touch('brackets')} ]]`,
    });
    for (const v of Object.values(payload)) expect(v.length).toBeLessThanOrEqual(256);
    const must = async (method: string, path: string, body: unknown) => {
      const r = await central.request(method, path, { body });
      expect(r.status, `${method} ${path}: ${r.text}`).toBeLessThan(300);
    };
    await must('POST', '/api/v1/sites', { name: 'dc1' });
    await must('POST', '/api/v1/machines', {
      name: 'evil-1',
      site: 'dc1',
      params: { greeting: '{{ 20 + 22 }}' },
      facts: {
        system: { uuid: 'u-1', serial: payload.query, vendor: 'QEMU', product: payload.stmt },
        cpu: { model: payload.expr, threads: 2 },
        disks: [{ name: 'sda', sizeBytes: 1, model: payload.brackets, serial: payload.loop, rotational: false }],
      },
    });
  });
  afterAll(async () => {
    await central?.cleanup();
    await killAllCentrals();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const sources = [
    ['the inventory script', () => SCRIPT],
    ['the inventory plugin', () => join(home, 'underlay.yml')],
  ] as const;

  it.each(sources)('ansible-playbook over %s prints and copies every payload verbatim; none runs, the operator param still renders', async (label, source) => {
    const dir = join(home, `play-${label.split(' ').pop()}`);
    const out = join(dir, 'out');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(dir, 'brackets.j2'),
      "#jinja2: variable_start_string:'[[', variable_end_string:']]'\nmodel=[[ underlay_facts.disks[0].model ]]\n",
    );
    writeFileSync(
      join(dir, 'site.yml'),
      `- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        var: underlay_facts
    - ansible.builtin.debug:
        var: underlay_facts.cpu.model
    - ansible.builtin.debug:
        msg: "{{ underlay_facts.cpu.model }}"
    - ansible.builtin.debug:
        msg: "{{ underlay_facts.system.product }}|{{ underlay_facts.disks[0].serial }}|{{ underlay_facts.system.serial }}"
    - ansible.builtin.set_fact:
        copied: "{{ underlay_facts.cpu.model }}"
    - ansible.builtin.debug:
        msg: "{{ copied }}"
    - ansible.builtin.copy:
        dest: "${out}/{{ inventory_hostname }}.json"
        content: "{{ {'expr': underlay_facts.cpu.model, 'stmt': underlay_facts.system.product, 'loop': underlay_facts.disks[0].serial, 'query': hostvars[inventory_hostname].underlay_facts.system.serial, 'brackets': underlay_facts.disks[0].model, 'copied': copied, 'greeting': greeting} | to_json }}"
    - ansible.builtin.template:
        src: brackets.j2
        dest: "${out}/{{ inventory_hostname }}.brackets"
`,
    );
    const r = await run('ansible-playbook', ['-i', source(), join(dir, 'site.yml')], env, dir);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/evil-1\s+: ok=8 .*failed=0/);

    // Nothing ran on the controller.
    expect(readdirSync(marks)).toEqual([]);
    for (const name of Object.keys(payload)) expect(existsSync(join(marks, name)), name).toBe(false);

    // debug var= and debug msg= print the payloads as they are.
    expect(r.stdout).toContain(`"underlay_facts.cpu.model": ${JSON.stringify(payload.expr)}`);
    expect(r.stdout).toContain(`"msg": ${JSON.stringify(payload.expr)}`);
    expect(r.stdout).toContain(`"msg": ${JSON.stringify(`${payload.stmt}|${payload.loop}|${payload.query}`)}`);
    expect(r.stdout).toContain(`"model": ${JSON.stringify(payload.brackets)}`);

    const seen = JSON.parse(readFileSync(join(out, 'evil-1.json'), 'utf8')) as Record<string, string>;
    expect(seen).toEqual({ ...payload, copied: payload.expr, greeting: '42' });
    expect(readFileSync(join(out, 'evil-1.brackets'), 'utf8')).toBe(`model=${payload.brackets}\n`);
  });

  it.each(sources)('ansible-inventory over %s sees every fact string as unsafe and the params as plain strings', async (_label, source) => {
    const r = await run('ansible-inventory', ['-i', source(), '--host', 'evil-1'], env);
    expect(r.code, r.stderr).toBe(0);
    const hv = JSON.parse(r.stdout) as { greeting: unknown; underlay_facts: Record<string, any>; underlay_site: unknown };
    const u = (s: string) => ({ __ansible_unsafe: s });
    expect(hv.underlay_facts).toEqual({
      system: { uuid: u('u-1'), serial: u(payload.query!), vendor: u('QEMU'), product: u(payload.stmt!) },
      cpu: { model: u(payload.expr!), threads: 2 },
      disks: [{ name: u('sda'), sizeBytes: 1, model: u(payload.brackets!), serial: u(payload.loop!), rotational: false }],
    });
    expect(hv.greeting).toBe('{{ 20 + 22 }}');
    expect(hv.underlay_site).toBe('dc1');
    expect(readdirSync(marks)).toEqual([]);
  });

  it('the plugin marks facts itself: a document from a central that did not mark them runs nothing either', async () => {
    // The document of an unpatched central: facts as plain strings. Served over loopback HTTP.
    const doc = (await central.request('GET', '/api/v1/inventory')).json as { _meta: { hostvars: Record<string, Record<string, unknown>> } };
    const unmark = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(unmark) : v && typeof v === 'object' ? ('__ansible_unsafe' in v ? (v as { __ansible_unsafe: unknown }).__ansible_unsafe : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unmark(x)]))) : v;
    const hv = doc._meta.hostvars['evil-1']!;
    hv.underlay_facts = unmark(hv.underlay_facts);
    expect(JSON.stringify(doc)).not.toContain('__ansible_unsafe');
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const dir = join(home, 'play-old');
      mkdirSync(dir);
      writeFileSync(join(dir, 'site.yml'), `- hosts: all\n  connection: local\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: "{{ underlay_facts.cpu.model }}|{{ underlay_facts.system.product }}|{{ greeting }}"\n`);
      const r = await run('ansible-playbook', ['-i', join(home, 'underlay.yml'), join(dir, 'site.yml')], { ...env, UNDERLAY_URL: url }, dir);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`"msg": ${JSON.stringify(`${payload.expr}|${payload.stmt}|42`)}`);
      expect(readdirSync(marks)).toEqual([]);
    } finally {
      server.close();
    }
  });
});
