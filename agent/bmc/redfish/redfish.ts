import { ApiClient, type ApiResponse } from '../../../shared/client/api-client.js';
import { type Bmc, BmcAuthError, BmcRefusedError, type BmcTarget, type BmcTiming, BmcUnreachableError, DEFAULT_BMC_TIMING } from '../bmc.js';

/** Our actions as Redfish `ResetType`s (DMTF ComputerSystem.Reset). */
const RESET_TYPES = { on: 'On', off: 'ForceOff', cycle: 'PowerCycle', reset: 'ForceRestart' } as const;
const BOOT_TARGETS = { pxe: 'Pxe', disk: 'Hdd' } as const;

interface RedfishSystem {
  PowerState?: string;
  Actions?: { '#ComputerSystem.Reset'?: { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] } };
  Boot?: { 'BootSourceOverrideTarget@Redfish.AllowableValues'?: string[] };
}

/**
 * Redfish (DMTF) through the project's HTTP client: a session (`SessionService/Sessions`, X-Auth-Token)
 * when the service offers one, else HTTP basic; the system is `/redfish/v1/Systems/{systemId}` or the
 * only member of the collection. TLS: the machine's CA, a SHA-256 pin, or insecure when the operator
 * said so. Timeouts and connection failures are retried; a refused login never is.
 */
export class RedfishBmc implements Bmc {
  private readonly client: ApiClient;

  constructor(
    private readonly target: BmcTarget,
    private readonly timing: BmcTiming = DEFAULT_BMC_TIMING,
  ) {
    const c = target.config;
    const scheme = c.tls?.http ? 'http' : 'https';
    const host = c.address.includes(':') ? `[${c.address}]` : c.address;
    this.client = new ApiClient({
      url: `${scheme}://${host}:${c.port ?? (scheme === 'http' ? 80 : 443)}`,
      peer: `the BMC at ${c.address}`,
      timeoutMs: timing.timeoutMs,
      // BmcTiming owns the retries; a BMC is on the site's own network, never behind a proxy.
      retries: 0,
      proxy: false,
      ...(c.tls?.ca ? { ca: c.tls.ca } : {}),
      tls: { ...(c.tls?.fingerprint ? { fingerprint256: c.tls.fingerprint } : {}), ...(c.tls?.insecure ? { insecure: true } : {}) },
    });
  }

  async powerState(): Promise<'on' | 'off'> {
    return this.withSession(async (auth) => {
      const sys = await this.system(auth);
      const s = sys.body.PowerState;
      if (s === 'On' || s === 'PoweringOff') return 'on';
      if (s === 'Off' || s === 'PoweringOn') return 'off';
      throw new BmcRefusedError(`the BMC reports no usable PowerState (${String(s)})`);
    });
  }

  async power(action: 'on' | 'off' | 'cycle' | 'reset'): Promise<void> {
    await this.withSession(async (auth) => {
      const sys = await this.system(auth);
      const reset = sys.body.Actions?.['#ComputerSystem.Reset'];
      const type = RESET_TYPES[action];
      const allowed = reset?.['ResetType@Redfish.AllowableValues'];
      if (allowed && !allowed.includes(type)) throw new BmcRefusedError(`the BMC does not support ResetType ${type} (power ${action}); it allows ${allowed.join(', ')}`);
      const path = reset?.target ?? `${sys.path}/Actions/ComputerSystem.Reset`;
      this.check(await this.send('POST', path, { ResetType: type }, auth), `power ${action}`);
    });
  }

  async setBootDevice(device: 'pxe' | 'disk', persistent: boolean): Promise<void> {
    await this.withSession(async (auth) => {
      const sys = await this.system(auth);
      const target = BOOT_TARGETS[device];
      const allowed = sys.body.Boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'];
      if (allowed && !allowed.includes(target)) throw new BmcRefusedError(`the BMC does not support boot target ${target}; it allows ${allowed.join(', ')}`);
      const body = { Boot: { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: persistent ? 'Continuous' : 'Once' } };
      this.check(await this.send('PATCH', sys.path, body, auth), `boot device ${device}`);
    });
  }

  private async system(auth: Record<string, string>): Promise<{ path: string; body: RedfishSystem }> {
    let path: string;
    if (this.target.config.systemId) path = `/redfish/v1/Systems/${encodeURIComponent(this.target.config.systemId)}`;
    else {
      const list = this.check(await this.send('GET', '/redfish/v1/Systems', undefined, auth), 'list systems') as { Members?: { '@odata.id'?: string }[] };
      const members = (list.Members ?? []).map((m) => m['@odata.id']).filter((m): m is string => typeof m === 'string' && m.startsWith('/redfish/v1/Systems/'));
      if (members.length !== 1) throw new BmcRefusedError(`the BMC has ${members.length} systems; set bmc.systemId to one of ${members.join(', ') || '(none)'}`);
      path = members[0]!;
    }
    return { path, body: this.check(await this.send('GET', path, undefined, auth), 'read the system') as RedfishSystem };
  }

  /** A session when the service has one (deleted afterwards), else basic auth. */
  private async withSession<T>(fn: (auth: Record<string, string>) => Promise<T>): Promise<T> {
    const c = this.target.config;
    const res = await this.send('POST', '/redfish/v1/SessionService/Sessions', { UserName: c.username, Password: this.target.password }, {});
    if (res.status === 401 || res.status === 403) throw new BmcAuthError(`the BMC at ${c.address} refused user "${c.username}": wrong user name or password`);
    const token = res.headers['x-auth-token'];
    if (res.status >= 200 && res.status < 300 && typeof token === 'string') {
      const location = typeof res.headers.location === 'string' ? new URL(res.headers.location, 'http://x').pathname : undefined;
      try {
        return await fn({ 'x-auth-token': token });
      } finally {
        if (location) await this.send('DELETE', location, undefined, { 'x-auth-token': token }).catch(() => undefined);
      }
    }
    return fn({ authorization: `Basic ${Buffer.from(`${c.username}:${this.target.password}`).toString('base64')}` });
  }

  /** One request, retried after a timeout or a connection failure (never after an answer). */
  private async send(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<ApiResponse<unknown>> {
    let last: Error | undefined;
    for (let attempt = 0; attempt <= this.timing.retries; attempt++) {
      try {
        return await this.client.raw(method, path, body, { 'odata-version': '4.0', ...headers });
      } catch (e) {
        last = e as Error;
        if ((e as { code?: string }).code === 'CERT_PIN_MISMATCH' || /not trusted|certificate/.test(last.message)) break;
      }
    }
    throw new BmcUnreachableError(`the BMC at ${this.target.config.address} did not answer (${this.timing.retries + 1} tries): ${last?.message ?? 'no answer'}`);
  }

  private check(res: ApiResponse<unknown>, what: string): unknown {
    if (res.status === 401 || res.status === 403) throw new BmcAuthError(`the BMC at ${this.target.config.address} refused user "${this.target.config.username}": wrong user name or password`);
    if (res.status >= 400) throw new BmcRefusedError(`${what}: the BMC answered ${res.status}: ${redfishMessage(res.body)}`);
    return res.body;
  }
}

/** The message of a Redfish error body (`error.message` or its first `@Message.ExtendedInfo`). */
function redfishMessage(body: unknown): string {
  const e = (body as { error?: { message?: string; '@Message.ExtendedInfo'?: { Message?: string }[] } } | undefined)?.error;
  return String(e?.['@Message.ExtendedInfo']?.[0]?.Message ?? e?.message ?? (typeof body === 'string' ? body : 'no message')).slice(0, 300);
}
