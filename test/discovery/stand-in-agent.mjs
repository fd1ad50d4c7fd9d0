// A stand-in for the site agent's machine-facing HTTP routes (docs/agent-http.md), for discovery tests.
// Plain ESM JavaScript so it runs with `node` inside a network namespace without a build step.
//
//   node test/discovery/stand-in-agent.mjs --host H --port P --dir DIR --token T [--tasks FILE] [--machine ID]
//        [--seq-floor N --agent-id A]
//
// Routes:
//   POST /api/v1/boot/claim             body {"token": T}: the first claim gets 200 {session, machine, mac,
//                                       seqFloor, agent}; any later claim 409 (appended to DIR/claims.jsonl)
//   POST /api/v1/discovery              bearer SESSION; body saved to DIR/discovery.json; 202 {accepted, machine?}
//   GET  /api/v1/runner/next?wait=S     bearer SESSION; hands out the envelopes of FILE (a JSON array of
//                                       {canonical, signature}) one per request, in order; 204 after wait
//   POST /api/v1/runner/tasks/ID/events bearer SESSION; appended to DIR/events.jsonl as {id, body}
//   GET  /marker/NAME                   no auth; appended to DIR/markers.jsonl (side effects of task scripts)
// Every request is logged to DIR/requests.jsonl. Prints "listening" on stdout once ready.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const dir = args.dir;
const token = args.token;
const queue = args.tasks ? JSON.parse(readFileSync(args.tasks, 'utf8')) : [];
if (!dir || !token) {
  console.error('usage: stand-in-agent.mjs --host H --port P --dir DIR --token T [--tasks FILE] [--machine ID]');
  process.exit(2);
}

const line = (file, obj) => appendFileSync(join(dir, file), JSON.stringify(obj) + '\n');
const send = (res, status, body) => {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

const session = randomBytes(32).toString('base64url');
let claimed = false;

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const authed = claimed && req.headers.authorization === `Bearer ${session}`;
    line('requests.jsonl', { method: req.method, path: url.pathname, authed, contentType: req.headers['content-type'] ?? null });

    if (url.pathname.startsWith('/marker/')) {
      line('markers.jsonl', { name: decodeURIComponent(url.pathname.slice('/marker/'.length)) });
      return send(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/api/v1/boot/claim') {
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return send(res, 400, { error: 'invalid JSON' });
      }
      const ok = body.token === token && !claimed;
      line('claims.jsonl', { ok, tokenMatches: body.token === token });
      if (!ok) return send(res, body.token === token ? 409 : 403, { error: 'refused' });
      claimed = true;
      return send(res, 200, { session, machine: args.machine ?? null, seqFloor: Number(args['seq-floor'] ?? 0), agent: args['agent-id'] ?? 'agent-test' });
    }
    if (!authed) return send(res, 401, { error: 'unauthorized' });

    if (req.method === 'POST' && url.pathname === '/api/v1/discovery') {
      let facts;
      try {
        facts = JSON.parse(raw);
      } catch (e) {
        line('errors.jsonl', { route: 'discovery', error: String(e), raw });
        return send(res, 400, { error: 'invalid JSON' });
      }
      const tmp = join(dir, 'discovery.json.tmp');
      writeFileSync(tmp, JSON.stringify(facts, null, 2));
      renameSync(tmp, join(dir, 'discovery.json'));
      return send(res, 202, args.machine ? { accepted: true, machine: args.machine } : { accepted: true });
    }
    if (req.method === 'GET' && url.pathname === '/api/v1/runner/next') {
      const next = queue.shift();
      if (next) return send(res, 200, next);
      const wait = Math.min(Number(url.searchParams.get('wait') ?? 0) || 0, 60);
      const t = setTimeout(() => send(res, 204), wait * 1000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    const m = /^\/api\/v1\/runner\/tasks\/([^/]+)\/events$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      let body;
      try {
        body = JSON.parse(raw);
      } catch (e) {
        line('errors.jsonl', { route: 'events', error: String(e), raw });
        return send(res, 400, { error: 'invalid JSON' });
      }
      line('events.jsonl', { id: decodeURIComponent(m[1]), body });
      return send(res, 202, { accepted: true });
    }
    return send(res, 404, { error: 'not found' });
  });
});

server.listen(Number(args.port ?? 8080), args.host ?? '127.0.0.1', () => {
  console.log('listening');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
