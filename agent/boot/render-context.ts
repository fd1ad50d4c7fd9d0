import { paramValues, resolveParams } from '../../shared/params/resolve.js';
import type { ParamDefinitionInput } from '../../shared/params/definition.js';
import type { RenderContext } from '../../shared/render/context.js';
import { parseBootEnv, type BootEnv } from '../../shared/bootenv/schema.js';
import { BUILTIN_DISCOVERY, BUILTIN_LOCAL } from '../../shared/bootenv/builtin.js';
import type { DesiredState, MachineState } from '../../shared/protocol/desired-state.js';
import { bootUrls } from './urls.js';

export interface AgentUrls {
  httpUrl: string;
  tftpAddress: string;
  pubkey: string;
}

/**
 * Builds the render context for one machine from the site's cached desired state (works offline).
 * Secret params arrive sealed (`{ "$sealed": … }`); `openSecret` opens them in memory only.
 */
export function renderContextFor(args: {
  state: DesiredState | null;
  machine: MachineState | undefined;
  mac: string;
  proposedId: string;
  token: string;
  agent: AgentUrls;
  platform?: 'pcbios' | 'efi';
  arch?: string;
  openSecret?: (v: unknown) => unknown;
  /** The agent's local copy (content-addressed) of an upstream URL or a boot-dir path, if it has one. */
  localArtifact?: (url: string) => string | undefined;
}): RenderContext {
  const { state, machine, agent, token } = args;
  const urls = bootUrls(agent.httpUrl);
  const bootenvs = (state?.bootenvs ?? []) as BootEnv[];
  const open = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v && typeof v === 'object' && '$sealed' in (v as object) && args.openSecret ? args.openSecret(v) : v]));
  let params: Record<string, unknown> = {};
  let bootenv: BootEnv | undefined;
  if (machine && state) {
    const profiles = (state.profiles as { name: string; params: Record<string, unknown> }[]) ?? [];
    const resolved = resolveParams((state.paramDefs as ParamDefinitionInput[]) ?? [], {
      machine: open(machine.params),
      profiles: machine.profiles.map((n) => profiles.find((p) => p.name === n)).filter((p): p is { name: string; params: Record<string, unknown> } => !!p).map((p) => ({ name: p.name, params: open(p.params) })),
      site: { name: state.site.name, params: open(state.site.params) },
      global: open(state.globalParams),
    });
    params = paramValues(resolved);
    const found = bootenvs.find((b) => b.name === machine.bootenv);
    // discovery and local are built in: they work before any library is imported.
    bootenv = found ? parseBootEnv(found) : machine.bootenv === 'discovery' ? BUILTIN_DISCOVERY : machine.bootenv === 'local' ? BUILTIN_LOCAL : undefined;
  }
  const discovery = bootenvs.find((b) => b.name === 'discovery');
  return {
    machine: {
      id: machine?.id ?? args.proposedId,
      name: machine?.name ?? `m-${args.mac.replace(/:/g, '')}`,
      macs: machine?.macs ?? [args.mac],
      ...(machine?.uuid ? { uuid: machine.uuid } : {}),
      ...(machine?.serial ? { serial: machine.serial } : {}),
      ...(machine?.address ? { address: machine.address } : {}),
      ...(args.arch ? { arch: args.arch } : {}),
      ...(args.platform ? { platform: args.platform } : {}),
      known: !!machine,
      netboot: machine?.netboot ?? true,
    },
    site: { name: state?.site.name ?? 'unknown' },
    params,
    ...(bootenv ? { bootenv } : {}),
    ...(discovery ? { discovery: parseBootEnv(discovery) } : {}),
    ...(state?.pki?.cas.length ? { serviceCas: state.pki.cas.map((c) => ({ name: c.name, ...(c.service ? { service: c.service } : {}), certificate: c.certificate })) } : {}),
    agent,
    token,
    urls: {
      files: (p: string) => {
        // An artifact pulled from the central stands for its upstream URL or for the boot-dir path it is
        // named after (discovery/vmlinuz); a boot-dir path without one is served from the boot dir as is.
        const local = args.localArtifact?.(p) ?? (/^https?:\/\//.test(p) ? undefined : p);
        return local === undefined ? p : urls.file(local);
      },
      machineBase: urls.machineBase(token),
      done: urls.installDone(token),
    },
  };
}
