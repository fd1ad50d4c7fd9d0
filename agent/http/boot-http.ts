import type { Context } from 'hono';
import { FileAdmission } from './file-admission.js';
import type { IncomingMessage } from 'node:http';
import { BootRenderer } from '../../shared/render/bootfiles.js';
import type { MachineState } from '../../shared/protocol/desired-state.js';
import type { AgentRuntime } from '../run.js';
import { renderContextFor, type AgentUrls } from '../boot/render-context.js';
import type { BootSession, BootSessions } from './boot-sessions.js';
import { UnavailableError } from '../../shared/errors/domain-errors.js';
import type { MachineIds } from './machine-id.js';
import type { OsCredentials } from './os-credentials.js';
import { MachineRateLimits, type BucketSpec } from './rate-limit.js';
import { bootUrls, type BootUrls } from '../boot/urls.js';

type Limits = { mac: BucketSpec; source: BucketSpec };

/** Rate limits of the machine endpoints (per MAC and per source address), tunable for tests. */
export interface MachineRateSpecs {
  script: Limits;
  claim: Limits;
  discovery: Limits;
  health: Limits;
  config: Limits;
}

export const DEFAULT_RATES: MachineRateSpecs = {
  // A boot fetches one script; iPXE retries a few times. A source may boot many machines behind NAT.
  script: { mac: { burst: 10, perSec: 1 / 6 }, source: { burst: 60, perSec: 5 } },
  claim: { mac: { burst: 5, perSec: 1 / 10 }, source: { burst: 30, perSec: 2 } },
  discovery: { mac: { burst: 5, perSec: 1 / 60 }, source: { burst: 30, perSec: 1 } },
  health: { mac: { burst: 60, perSec: 2 }, source: { burst: 120, perSec: 10 } },
  config: { mac: { burst: 60, perSec: 2 }, source: { burst: 120, perSec: 10 } },
};

export interface BootHttpOptions {
  rt: Pick<AgentRuntime, 'desiredState' | 'machineQueue' | 'executor' | 'taskLog' | 'logger' | 'emitEvent' | 'outbox'>;
  sessions: BootSessions;
  /** Installed-OS credentials (agent/http/os-credentials.ts); without it deployed machines have no session. */
  osCredentials?: OsCredentials;
  machineIds: MachineIds;
  agent: AgentUrls;
  /** The agent's id (the `agent` of its task envelopes): the runner applies its replay floor to these. */
  agentId?: string;
  /** Directory served at /files/ (kernels, initrds, images). */
  bootDir: string;
  /** Directory holding the iPXE binaries (Debian: /usr/lib/ipxe). */
  ipxeDir: string;
  /** The renderer to use, or a function returning the current one (it changes with the site's snippets). */
  renderer?: BootRenderer | (() => BootRenderer);
  openSecret?: (v: unknown) => unknown;
  localArtifact?: (url: string) => string | undefined;
  /**
   * Send machines to upstream kernel/initrd URLs that pin no sha256 and have no local copy. Off: such a
   * boot script is refused (UnpinnedUrlError, logged with the URLs) — the operator pins them, fetches them
   * (`images fetch --allow-unpinned`), or runs the agent with --allow-unpinned.
   */
  allowUnpinned?: boolean;
  /** Longest a runner may long-poll, seconds. */
  maxWaitSec?: number;
  rates?: Partial<MachineRateSpecs>;
  /**
   * Addresses this agent's DHCP server has bound to a MAC right now. When it knows any, a boot token for
   * that MAC is minted only for a script request from one of them (knowing a MAC is not enough).
   */
  leasedAddresses?: (mac: string) => string[];
  /** Boot-file downloads (`/files/*`) served at once; more get 503 + Retry-After (agent/http/file-admission.ts). */
  maxFileDownloads?: number;
  /** Of those, what one client address may hold at once (default a quarter of them). */
  maxFileDownloadsPerAddress?: number;
  /** Called once per finished request with its route pattern and status (the agent's metrics). */
  onRequest?: (route: string, status: number) => void;
}

/** What the route modules share: options, renderer, render contexts, limits, events and who is asking. */
export class BootHttp {
  readonly log: AgentRuntime['logger'];
  readonly limits: Record<keyof MachineRateSpecs, MachineRateLimits>;
  private readonly fixed: BootRenderer | null;
  /** The absolute URLs of this agent's boot surface (agent/boot/urls.ts). */
  readonly urls: BootUrls;
  /** How many boot-file downloads run at once. */
  readonly fileAdmission: FileAdmission;

  constructor(readonly o: BootHttpOptions) {
    this.log = o.rt.logger;
    this.urls = bootUrls(o.agent.httpUrl);
    this.fileAdmission = new FileAdmission({
      ...(o.maxFileDownloads ? { max: o.maxFileDownloads } : {}),
      ...(o.maxFileDownloadsPerAddress ? { perAddress: o.maxFileDownloadsPerAddress } : {}),
    });
    this.fixed = o.renderer instanceof BootRenderer ? o.renderer : o.renderer ? null : new BootRenderer({ logger: this.log });
    const rates = { ...DEFAULT_RATES, ...o.rates };
    this.limits = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, new MachineRateLimits(v)])) as Record<keyof MachineRateSpecs, MachineRateLimits>;
  }

  get sessions(): BootSessions {
    return this.o.sessions;
  }

  renderer(): BootRenderer {
    return this.fixed ?? (this.o.renderer as () => BootRenderer)();
  }

  machineByMac(mac: string): MachineState | undefined {
    return this.o.rt.desiredState.machineByMac(mac);
  }

  /** The machine id for a MAC: the central's, or the one the agent proposes for an unknown MAC. */
  machineIdOf(mac: string): string {
    return this.machineByMac(mac)?.id ?? this.o.machineIds.proposed(mac);
  }

  /** Render context for a MAC with a boot token; `sealed` counts the secret params opened for it. */
  context(mac: string, token: string, extra: { platform?: 'pcbios' | 'efi'; arch?: string; openSecret?: (v: unknown) => unknown } = {}) {
    return renderContextFor({
      state: this.o.rt.desiredState.current,
      machine: this.machineByMac(mac),
      mac,
      proposedId: this.o.machineIds.proposed(mac),
      token,
      agent: this.o.agent,
      openSecret: this.o.openSecret,
      localArtifact: this.o.localArtifact,
      ...extra,
    });
  }

  /**
   * An event to the central through the durable outbox. When the outbox cannot take it (full, disk full)
   * the request fails with UnavailableError (503 + Retry-After): nothing is acknowledged that is not on disk.
   */
  async emit(kind: string, data: unknown, id?: string): Promise<void> {
    try {
      await this.o.rt.emitEvent(kind, data, id);
    } catch (e) {
      this.log.error({ kind, err: (e as Error).message }, 'could not queue an event for the central; answering 503');
      throw new UnavailableError('the agent cannot record this right now (outbox or disk full); retry later');
    }
  }

  /** The TCP peer's address, IPv4-mapped IPv6 unwrapped ("unknown" for in-process requests without a socket). */
  remote(c: Context): string {
    return ((c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket?.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d+\.)/, '');
  }

  bearer(c: Context): string | undefined {
    const auth = c.req.header('authorization');
    return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
  }

  /**
   * The session of the request's bearer credential: a live boot session, or an installed OS's (id
   * `os:<deploy task>`, agent/http/os-credentials.ts). UnauthenticatedError otherwise.
   */
  session(c: Context): BootSession {
    const bearer = this.bearer(c);
    return this.o.osCredentials?.session(bearer, this.remote(c)) ?? this.sessions.authenticate(bearer);
  }

  /** The live boot session (never an installed OS's) of the request's bearer credential. */
  bootSession(c: Context): BootSession {
    return this.sessions.authenticate(this.bearer(c));
  }
}
