import { randomUUID } from 'node:crypto';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { QemuMachine } from './qemu-qmp.js';

/**
 * A Redfish service for one QEMU VM, after the DMTF schema (ServiceRoot, ComputerSystemCollection,
 * ComputerSystem with `Actions/ComputerSystem.Reset` and `Boot` overrides, SessionService with
 * X-Auth-Token sessions, basic auth), as sushy-tools does for libvirt. Power goes to QEMU over QMP
 * (test/power/qemu-qmp.ts). A test rig: not part of the product.
 */
export interface RedfishStandIn {
  url: string;
  /** Requests seen (method and path), for checks. */
  requests: { method: string; path: string; auth: 'basic' | 'session' | 'none' }[];
  boot: { target: 'None' | 'Pxe' | 'Hdd'; enabled: 'Disabled' | 'Once' | 'Continuous' };
  close(): Promise<void>;
}

const SYSTEM = '/redfish/v1/Systems/vm0';
const RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle'];
const odata = (id: string, type: string) => ({ '@odata.id': id, '@odata.type': type });

export async function startRedfishStandIn(vm: QemuMachine, opts: { username: string; password: string; tls?: { key: string; cert: string } }): Promise<RedfishStandIn> {
  const sessions = new Map<string, string>();
  const st: RedfishStandIn = { url: '', requests: [], boot: { target: 'None', enabled: 'Disabled' }, close: async () => undefined };

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'odata-version': '4.0', ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, message: string) =>
    send(res, status, { error: { code: 'Base.1.8.GeneralError', message, '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.GeneralError', Message: message }] } });
  const readBody = (req: IncomingMessage) =>
    new Promise<unknown>((resolve, reject) => {
      let size = 0;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 65536) req.destroy(new Error('body too large'));
        else chunks.push(c);
      });
      req.on('end', () => {
        try {
          resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {});
        } catch {
          reject(new Error('malformed JSON'));
        }
      });
      req.on('error', reject);
    });

  const system = async () => ({
    ...odata(SYSTEM, '#ComputerSystem.v1_10_0.ComputerSystem'),
    Id: 'vm0',
    Name: 'QEMU VM',
    SystemType: 'Virtual',
    PowerState: (await vm.running()) ? 'On' : 'Off',
    Status: { State: 'Enabled', Health: 'OK' },
    Boot: {
      BootSourceOverrideTarget: st.boot.target,
      BootSourceOverrideEnabled: st.boot.enabled,
      'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd'],
    },
    Actions: { '#ComputerSystem.Reset': { target: `${SYSTEM}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': RESET_TYPES } },
  });

  /** Power on honours a PXE-once override (and consumes it). */
  const powerOn = async () => {
    const pxe = st.boot.target === 'Pxe' && st.boot.enabled !== 'Disabled';
    if (pxe && st.boot.enabled === 'Once') st.boot = { target: 'None', enabled: 'Disabled' };
    await vm.start(pxe ? 'pxe' : undefined);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '');
    const method = req.method ?? 'GET';
    const authz = req.headers.authorization;
    const token = req.headers['x-auth-token'];
    const basicOk = authz === `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    const sessionOk = typeof token === 'string' && sessions.has(token);
    st.requests.push({ method, path, auth: sessionOk ? 'session' : basicOk ? 'basic' : 'none' });
    // The service root is readable without credentials (DMTF DSP0266); everything else needs them.
    if (method === 'GET' && (path === '/redfish/v1' || path === '/redfish')) {
      if (path === '/redfish') return send(res, 200, { v1: '/redfish/v1/' });
      return send(res, 200, {
        ...odata('/redfish/v1', '#ServiceRoot.v1_5_0.ServiceRoot'),
        Id: 'RootService',
        Name: 'Underlay test Redfish service',
        RedfishVersion: '1.8.0',
        UUID: '85775665-c110-4b85-8989-e6162170b3ec',
        Systems: { '@odata.id': '/redfish/v1/Systems' },
        SessionService: { '@odata.id': '/redfish/v1/SessionService' },
        Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
      });
    }
    if (method === 'POST' && path === '/redfish/v1/SessionService/Sessions') {
      const b = (await readBody(req)) as { UserName?: string; Password?: string };
      if (b.UserName !== opts.username || b.Password !== opts.password) return error(res, 401, 'Invalid username or password');
      const id = randomUUID();
      const tok = randomUUID();
      sessions.set(tok, id);
      const loc = `/redfish/v1/SessionService/Sessions/${id}`;
      return send(res, 201, { ...odata(loc, '#Session.v1_1_0.Session'), Id: id, Name: 'Session', UserName: b.UserName }, { 'x-auth-token': tok, location: loc });
    }
    if (!basicOk && !sessionOk) return error(res, 401, 'Authentication required');
    if (method === 'GET' && path === '/redfish/v1/SessionService') {
      return send(res, 200, { ...odata('/redfish/v1/SessionService', '#SessionService.v1_1_0.SessionService'), Id: 'SessionService', Name: 'Session Service', ServiceEnabled: true, Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } });
    }
    if (method === 'DELETE' && path.startsWith('/redfish/v1/SessionService/Sessions/')) {
      for (const [tok, id] of sessions) if (path.endsWith(`/${id}`)) sessions.delete(tok);
      return send(res, 204);
    }
    if (method === 'GET' && path === '/redfish/v1/Systems') {
      return send(res, 200, { ...odata('/redfish/v1/Systems', '#ComputerSystemCollection.ComputerSystemCollection'), Name: 'Computer System Collection', 'Members@odata.count': 1, Members: [{ '@odata.id': SYSTEM }] });
    }
    if (method === 'GET' && path === SYSTEM) return send(res, 200, await system());
    if (method === 'PATCH' && path === SYSTEM) {
      const b = (await readBody(req)) as { Boot?: { BootSourceOverrideTarget?: string; BootSourceOverrideEnabled?: string } };
      const t = b.Boot?.BootSourceOverrideTarget ?? st.boot.target;
      const e = b.Boot?.BootSourceOverrideEnabled ?? (t === 'None' ? 'Disabled' : 'Once');
      if (!['None', 'Pxe', 'Hdd'].includes(t)) return error(res, 400, `BootSourceOverrideTarget ${t} is not supported`);
      if (!['Disabled', 'Once', 'Continuous'].includes(e)) return error(res, 400, `BootSourceOverrideEnabled ${e} is not supported`);
      st.boot = { target: t as RedfishStandIn['boot']['target'], enabled: e as RedfishStandIn['boot']['enabled'] };
      return send(res, 204);
    }
    if (method === 'POST' && path === `${SYSTEM}/Actions/ComputerSystem.Reset`) {
      const b = (await readBody(req)) as { ResetType?: string };
      const running = await vm.running();
      switch (b.ResetType) {
        case 'On':
          if (!running) await powerOn();
          return send(res, 204);
        case 'ForceOff':
        case 'GracefulShutdown':
          await vm.stop();
          return send(res, 204);
        case 'ForceRestart':
          if (!running) return error(res, 409, 'the system is off');
          await vm.reset();
          return send(res, 204);
        case 'PowerCycle':
          await vm.stop();
          await powerOn();
          return send(res, 204);
        default:
          return error(res, 400, `ResetType ${String(b.ResetType)} is not supported`);
      }
    }
    return error(res, 404, `${method} ${path}: no such resource`);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: Error) => error(res, 400, e.message));
  };
  const server: Server = opts.tls ? createHttps({ key: opts.tls.key, cert: opts.tls.cert }, listener) : createHttp(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  st.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  st.close = () => new Promise((r) => server.close(() => r()));
  return st;
}
