/**
 * The collection's HTTP client (plugin_utils/api.py, run by the real python3): a POST (a task) is never
 * sent twice. A kept-alive connection the central closed while idle is noticed before the next request
 * (no POST goes into a dead socket), and a POST that fails after it was sent is an error, not a retry;
 * a GET on a reused connection that fails before any answer is retried once.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { runProcess } from '../central/support.js';
import { COLLECTIONS } from './agent-playbook.test-support.js';

const ready = checkPrereqs('ansible plugin HTTP client', { commands: ['python3'] });
const PLUGIN_UTILS = join(COLLECTIONS, 'ansible_collections/underlay/underlay/plugins/plugin_utils');

/** Runs python with api.py importable; the script prints one JSON line per call's outcome. */
async function py(script: string): Promise<string[]> {
  const r = await runProcess('python3', ['-c', `import sys, json, time\nsys.path.insert(0, ${JSON.stringify(PLUGIN_UTILS)})\nfrom api import UnderlayApi, UnderlayApiError\n${script}`], {});
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

describe.skipIf(!ready)('the collection HTTP client never repeats a POST', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });

  async function listen(handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, n: number) => void, keepAliveMs = 5_000): Promise<{ url: string; posts: () => number; gets: () => number }> {
    let posts = 0;
    let gets = 0;
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST') posts++;
        else gets++;
        handler(req, res, req.method === 'POST' ? posts : gets);
      });
    });
    server.keepAliveTimeout = keepAliveMs;
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posts: () => posts, gets: () => gets };
  }

  it('a POST that fails after it reached the central is an error, sent once', async () => {
    const s = await listen((req, res) => {
      if (req.method === 'POST') return req.socket.destroy(); // received, then the connection drops: no answer
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const out = await py(`api = UnderlayApi(${JSON.stringify(s.url)}, 't')
print(json.dumps(api.request('GET', '/api/v1/healthz')[0]))
try:
    api.request('POST', '/api/v1/tasks', {'kind': 'exec'})
    print('no error')
except UnderlayApiError as e:
    print('error', e.status)`);
    expect(out).toEqual(['200', 'error 0']);
    expect(s.posts()).toBe(1);
  });

  it('an idle connection the central closed is replaced before the POST, which then succeeds once', async () => {
    const s = await listen((_req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"t1"}'), 200);
    const out = await py(`api = UnderlayApi(${JSON.stringify(s.url)}, 't')
print(api.request('POST', '/api/v1/tasks', {})[0])
time.sleep(0.8)
print(api.request('POST', '/api/v1/tasks', {})[0])`);
    expect(out).toEqual(['201', '201']);
    expect(s.posts()).toBe(2);
  });

  it('a GET on a reused connection that fails before any answer is retried once on a fresh one', async () => {
    const s = await listen((req, res, n) => {
      if (n === 2) return req.socket.destroy();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const out = await py(`api = UnderlayApi(${JSON.stringify(s.url)}, 't')
print(api.request('GET', '/a')[0])
print(api.request('GET', '/b')[0])`);
    expect(out).toEqual(['200', '200']);
    expect(s.gets()).toBe(3);
  });
});
