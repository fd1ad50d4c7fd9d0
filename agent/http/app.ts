import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serveStatic } from '@hono/node-server/serve-static';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { getMimeType } from 'hono/utils/mime';
import type { ServerResponse } from 'node:http';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { BootRenderer } from '../../shared/render/bootfiles.js';
import { NoSuchFileError, RenderError } from '../../shared/render/errors.js';
import type { AgentRuntime } from '../run.js';
import { bootContext, type AgentUrls } from './boot-context.js';
import type { MachineTokens } from './machine-token.js';

export interface BootHttpOptions {
  rt: Pick<AgentRuntime, 'desiredState' | 'machineQueue' | 'executor' | 'taskLog' | 'logger' | 'emitEvent' | 'outbox'>;
  tokens: MachineTokens;
  agent: AgentUrls;
  /** Directory served at /files/ (kernels, initrds, images). */
  bootDir: string;
  /** Directory holding the iPXE binaries (Debian: /usr/lib/ipxe). */
  ipxeDir: string;
  /** The renderer to use, or a function returning the current one (it changes with the site's snippets). */
  renderer?: BootRenderer | (() => BootRenderer);
  openSecret?: (v: unknown) => unknown;
  localArtifact?: (url: string) => string | undefined;
  /** Longest a runner may long-poll, seconds. */
  maxWaitSec?: number;
}

const IPXE_BINARIES = new Set(['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'ipxe.pxe', 'snp.efi']);
const MacQuery = z.string().regex(/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/).transform((m) => m.toLowerCase().replace(/-/g, ':'));

const RunnerEvent = z
  .object({ state: z.enum(['running', 'succeeded', 'failed']), output: z.string().max(1_100_000).optional(), exitCode: z.number().int().optional() })
  .strict();

/**
 * The agent's HTTP boot surface (docs/agent-http.md): iPXE entry and per-machine scripts, boot files
 * with Range, per-machine rendered configuration, discovery intake and the machine runner's task API.
 * Plain HTTP (firmware has no trust store); machines are identified by per-machine tokens.
 */
export function createBootApp(o: BootHttpOptions): Hono {
  const app = new Hono();
  const log = o.rt.logger;
  const fixed = o.renderer instanceof BootRenderer ? o.renderer : o.renderer ? null : new BootRenderer({ logger: log });
  const current = () => fixed ?? (o.renderer as () => BootRenderer)();
  const bootDir = resolve(o.bootDir);

  const machineFor = (mac: string) => o.rt.desiredState.machineByMac(mac);
  const ctxFor = (mac: string, extra: { platform?: 'pcbios' | 'efi'; arch?: string } = {}) =>
    bootContext({
      state: o.rt.desiredState.current,
      machine: machineFor(mac),
      mac,
      proposedId: o.tokens.proposedMachineId(mac),
      token: o.tokens.issue(mac),
      agent: o.agent,
      openSecret: o.openSecret,
      localArtifact: o.localArtifact,
      ...extra,
    });
  const bearerMac = (auth: string | undefined) => o.tokens.verify(auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined);
  const machineIdOf = (mac: string) => machineFor(mac)?.id ?? o.tokens.proposedMachineId(mac);

  app.onError((err, c) => {
    log.error({ err, path: c.req.path }, 'boot http error');
    return c.text('internal error\n', 500);
  });
  app.use('/api/*', bodyLimit({ maxSize: 2 * 1024 * 1024, onError: (c) => c.json({ error: { code: 'payload_too_large', message: 'body over 2 MiB' } }, 413) }));

  app.get('/healthz', (c) => c.json({ status: 'ok', stateVersion: o.rt.desiredState.version, outbox: o.rt.outbox.depth() }));

  app.get('/boot.ipxe', (c) =>
    c.text(
      [
        '#!ipxe',
        'set try:int32 0',
        ':retry',
        `chain ${o.agent.httpUrl}/ipxe/script?mac=\${mac}&uuid=\${uuid}&buildarch=\${buildarch}&platform=\${platform} && goto done || goto failed`,
        ':failed',
        'iseq ${try} 5 && goto giveup ||',
        'inc try',
        'echo Underlay: could not load this machine\'s boot script; retrying in 5 s',
        'sleep 5',
        'goto retry',
        ':giveup',
        'echo Underlay: giving up; booting from disk',
        'exit',
        ':done',
        '',
      ].join('\n'),
      200,
      { 'content-type': 'text/plain; charset=utf-8' },
    ),
  );

  app.get('/ipxe/script', (c) => {
    const mac = MacQuery.safeParse(c.req.query('mac'));
    if (!mac.success) return c.text('#!ipxe\necho Underlay: the request carried no valid MAC\nexit\n', 400);
    const platform = c.req.query('platform');
    const arch = c.req.query('buildarch');
    try {
      const script = current().ipxeScript(
        ctxFor(mac.data, { ...(platform === 'pcbios' || platform === 'efi' ? { platform } : {}), ...(arch && /^[a-z0-9_]{1,16}$/.test(arch) ? { arch } : {}) }),
      );
      log.info({ mac: mac.data, known: !!machineFor(mac.data), platform }, 'served iPXE script');
      return c.text(script, 200, { 'content-type': 'text/plain; charset=utf-8' });
    } catch (e) {
      const reason = e instanceof RenderError ? e.message : (e as Error).message;
      log.error({ mac: mac.data, reason }, 'could not render the iPXE script; not serving it');
      void o.rt.emitEvent('render-error', { mac: mac.data, path: 'ipxe', reason }).catch(() => undefined);
      return c.text(`render error: ${reason}\n`, 500);
    }
  });

  app.get('/ipxe/:binary', (c) => {
    const name = c.req.param('binary');
    if (!IPXE_BINARIES.has(name)) return c.text('not found\n', 404);
    const p = join(o.ipxeDir, name);
    if (!existsSync(p)) return c.text('not found\n', 404);
    return new Response(Readable.toWeb(createReadStream(p)) as ReadableStream, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(statSync(p).size) } });
  });

  app.use('/files/*', async (c, next) => {
    const rel = decodeURIComponent(c.req.path.slice('/files/'.length));
    const target = resolve(bootDir, rel);
    if (rel.includes('\0') || rel.split('/').includes('..') || relative(bootDir, target).startsWith('..')) return c.text('bad path\n', 400);
    await next();
  });
  // Fast path for whole-file GETs under @hono/node-server (kernels, initrds): the file is piped straight
  // into the Node response instead of through a web ReadableStream, which cost ~3-4x throughput in
  // scripts/bench/boot. Range, HEAD, percent-encoded paths and anything unusual go to serveStatic below.
  app.get('/files/*', async (c, next) => {
    const out = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (!out || typeof out.writeHead !== 'function' || c.req.method !== 'GET' || c.req.header('range') || c.req.path.includes('%') || c.req.path.includes('\\')) return next();
    const rel = c.req.path.slice('/files/'.length);
    const target = resolve(bootDir, rel);
    const inside = relative(bootDir, target);
    if (!rel || rel.includes('//') || inside === '' || inside.startsWith('..') || isAbsolute(inside)) return next();
    let st;
    try {
      st = await stat(target);
    } catch {
      return next();
    }
    if (!st.isFile()) return next();
    out.writeHead(200, {
      'content-type': getMimeType(target) ?? 'application/octet-stream',
      'content-length': String(st.size),
      'last-modified': st.mtime.toUTCString(),
    });
    pipeline(createReadStream(target, { highWaterMark: 256 * 1024 }), out, (err) => {
      if (err) log.debug({ err: err.message, path: c.req.path }, 'boot file transfer ended early');
    });
    return RESPONSE_ALREADY_SENT;
  });
  app.get('/files/*', serveStatic({ root: bootDir, rewriteRequestPath: (p) => p.slice('/files'.length) }));

  app.get('/m/:token/*', (c) => {
    const mac = o.tokens.verify(c.req.param('token'));
    if (!mac) return c.text('unknown machine token\n', 403);
    const path = c.req.path.slice(`/m/${c.req.param('token')}/`.length);
    try {
      const f = current().file(ctxFor(mac), decodeURIComponent(path));
      return c.body(f.body, 200, { 'content-type': f.contentType ?? 'text/plain; charset=utf-8' });
    } catch (e) {
      if (e instanceof NoSuchFileError) return c.text('not found\n', 404);
      const reason = (e as Error).message;
      log.error({ mac, path, reason }, 'could not render a machine file; not serving it');
      void o.rt.emitEvent('render-error', { mac, path, reason }).catch(() => undefined);
      return c.text(`render error: ${reason}\n`, 500);
    }
  });

  // Reinstall-loop guard: an install reports success; the machine boots from disk from now on.
  app.post('/m/:token/done', async (c) => {
    const mac = o.tokens.verify(c.req.param('token'));
    if (!mac) return c.text('unknown machine token\n', 403);
    const m = machineFor(mac);
    if (!m) return c.text('unknown machine\n', 404);
    o.rt.desiredState.override(m.id, { netboot: false, bootenv: 'local' });
    await o.rt.emitEvent('install-done', { machineId: m.id, mac, bootenv: m.bootenv });
    log.info({ machine: m.id, mac }, 'install reported success: machine switched to local boot');
    return c.json({ ok: true, bootenv: 'local', netboot: false });
  });

  app.post('/api/v1/discovery', async (c) => {
    const mac = bearerMac(c.req.header('authorization'));
    if (!mac) return c.json({ error: { code: 'unauthenticated', message: 'a machine token is required' } }, 401);
    let facts: unknown;
    try {
      facts = await c.req.json();
    } catch {
      return c.json({ error: { code: 'invalid_request', message: 'body is not JSON' } }, 400);
    }
    if (!facts || typeof facts !== 'object' || Array.isArray(facts)) return c.json({ error: { code: 'invalid_request', message: 'facts must be a JSON object' } }, 400);
    const machineId = machineIdOf(mac);
    // Durable in the outbox before we acknowledge: discovery during a central outage is not lost.
    await o.rt.emitEvent('discovery', { machineId, mac, facts }, `discovery-${mac}-${Date.now()}`);
    log.info({ mac, machine: machineId }, 'discovery received');
    return c.json({ accepted: true, machine: machineId }, 202);
  });

  // Service health for members running on this machine, relayed to the central through the outbox.
  app.put('/api/v1/services/:service/members/:member/:check', async (c) => {
    const mac = bearerMac(c.req.header('authorization'));
    if (!mac) return c.json({ error: { code: 'unauthenticated', message: 'a machine token is required' } }, 401);
    const status = ({ pass: 'passing', warn: 'warning', fail: 'critical' } as const)[c.req.param('check') as 'pass' | 'warn' | 'fail'];
    if (!status) return c.json({ error: { code: 'not_found', message: 'use pass, warn or fail' } }, 404);
    let note: string | undefined;
    const text = await c.req.text();
    if (text) {
      try {
        const body = JSON.parse(text) as { note?: unknown };
        if (body.note !== undefined && typeof body.note !== 'string') throw new Error('note must be a string');
        note = body.note as string | undefined;
      } catch (e) {
        return c.json({ error: { code: 'invalid_request', message: (e as Error).message } }, 400);
      }
    }
    const data = { service: c.req.param('service'), member: c.req.param('member'), status, machineId: machineIdOf(mac), ...(note ? { note: note.slice(0, 4096) } : {}) };
    await o.rt.emitEvent('service-status', data);
    return c.json({ accepted: true, ...data }, 202);
  });

  app.get('/api/v1/runner/next', async (c) => {
    const mac = bearerMac(c.req.header('authorization'));
    if (!mac) return c.json({ error: { code: 'unauthenticated', message: 'a machine token is required' } }, 401);
    const wait = Math.min(Math.max(Number(c.req.query('wait') ?? 0) || 0, 0), o.maxWaitSec ?? 60);
    const task = await o.rt.machineQueue.waitFor(machineIdOf(mac), wait * 1000);
    if (!task) return c.body(null, 204);
    log.info({ mac, task: task.id, kind: task.kind }, 'handed a task to the machine runner');
    return c.json(task.signed, 200);
  });

  app.post('/api/v1/runner/tasks/:id/events', async (c) => {
    const mac = bearerMac(c.req.header('authorization'));
    if (!mac) return c.json({ error: { code: 'unauthenticated', message: 'a machine token is required' } }, 401);
    const id = c.req.param('id');
    const task = o.rt.machineQueue.get(id);
    const known = o.rt.taskLog.get(id);
    if ((!task && !known) || (task && task.machine !== machineIdOf(mac)) || (known && known.machine !== machineIdOf(mac))) {
      return c.json({ error: { code: 'not_found', message: 'no such task for this machine' } }, 404);
    }
    let body: z.infer<typeof RunnerEvent>;
    try {
      body = RunnerEvent.parse(await c.req.json());
    } catch (e) {
      return c.json({ error: { code: 'invalid_request', message: (e as Error).message } }, 400);
    }
    await o.rt.executor.report(id, body.state, { ...(body.output !== undefined ? { output: body.output } : {}), ...(body.exitCode !== undefined ? { exitCode: body.exitCode } : {}) });
    if (body.state !== 'running') {
      await o.rt.machineQueue.done(id);
      if (known) await o.rt.taskLog.record({ ...known, state: body.state, at: new Date().toISOString() });
    }
    return c.json({ ok: true });
  });

  return app;
}
