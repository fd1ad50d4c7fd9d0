/**
 * The collection (scripts/ansible/collections/ansible_collections/underlay/underlay): ansible-galaxy builds
 * it, and the connection plugin turns a refused task into a clear, per-host error. The second test puts a
 * stand-in central (plain HTTP, this process) behind the real ansible: it answers the inventory and says
 * the exec task was refused by the runner (bad-signature), as a forged or replayed task is.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { runProcess } from '../central/support.js';
import { agentAnsibleEnv, COLLECTIONS, inventoryConfig } from './agent-playbook.test-support.js';

const ready = checkPrereqs('ansible collection', { commands: ['ansible-galaxy', 'ansible'] });

describe.skipIf(!ready)('the underlay.underlay collection', () => {
  const work = mkdtempSync(join(tmpdir(), 'underlay-collection-'));
  let server: Server | undefined;
  afterAll(async () => {
    if (server) await new Promise((r) => server!.close(r));
    rmSync(work, { recursive: true, force: true });
  });

  it('ansible-galaxy collection build accepts its layout', async () => {
    const src = join(COLLECTIONS, 'ansible_collections/underlay/underlay');
    const r = await runProcess('ansible-galaxy', ['collection', 'build', src, '--output-path', work, '--force'], { cwd: work, env: { ...process.env, HOME: work } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readdirSync(work)).toContain('underlay-underlay-0.2.0.tar.gz');
  });

  it('a task the runner refused fails the host with the reason, and the token never shows', async () => {
    const TOKEN = 'ul_operator_token_never_printed';
    const calls: string[] = [];
    server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { error: { code: 'unauthenticated', message: 'no' } });
      if (req.url?.startsWith('/api/v1/inventory')) return json(200, { all: { children: ['site_lab', 'ungrouped'] }, site_lab: { hosts: ['node-a'] }, ungrouped: {}, _meta: { hostvars: { 'node-a': { underlay_site: 'lab' } } } });
      if (req.method === 'POST' && req.url === '/api/v1/tasks') return json(201, { id: 't-1', state: 'queued' });
      if (req.url?.startsWith('/api/v1/tasks/t-1')) return json(200, { id: 't-1', state: 'failed', output: 'bad-signature' });
      json(404, { error: { code: 'not_found', message: 'no' } });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    writeFileSync(join(work, 'underlay.yml'), inventoryConfig());
    const r = await runProcess('ansible', ['-i', 'underlay.yml', 'node-a', '-m', 'raw', '-a', 'id'], { cwd: work, env: agentAnsibleEnv({ centralUrl: url, token: TOKEN, caFile: '', home: work }) });
    const output = r.stdout + r.stderr;
    expect(r.code, output).not.toBe(0);
    expect(output).toMatch(/node-a \| UNREACHABLE!/);
    expect(output).toContain('underlay: exec task t-1 on node-a failed (bad-signature)');
    expect(output).not.toContain(TOKEN);
    expect(calls).toContain('POST /api/v1/tasks');
  });
});
