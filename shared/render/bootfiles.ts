import { silentLogger, type Logger } from '../log/logger.js';
import { BUILTIN_DISCOVERY } from '../bootenv/builtin.js';
import type { BootEnv } from '../bootenv/schema.js';
import { RenderContextSchema, type RenderContext, type ParsedRenderContext } from './context.js';
import { TemplateEngine, type EngineLimits } from './engine.js';
import { MissingParamError, NoSuchFileError, RenderError, TemplateRenderError } from './errors.js';
import { validateRendered, type ValidatorKind } from './validate.js';
import { pkiTemplateContext } from '../pki/template-context.js';

export interface RenderedFile {
  /** The path asked for, normalised (no leading slash). */
  path: string;
  /** `<bootenv>/<template name>`. */
  template: string;
  contentType: string;
  body: string;
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: RenderError };

export interface BootPreview {
  /** The boot environment actually used (discovery for unknown machines), or null when none applies. */
  bootenv: string | null;
  ipxe: Attempt<string>;
  files: Array<{ path: string; result: Attempt<RenderedFile> }>;
}

const CONTENT_TYPES: Record<ValidatorKind, string> = {
  ignition: 'application/vnd.coreos.ignition+json',
  'cloud-config': 'text/cloud-config; charset=utf-8',
  kickstart: 'text/plain; charset=utf-8',
  preseed: 'text/plain; charset=utf-8',
  ipxe: 'text/plain; charset=utf-8',
  json: 'application/json',
  yaml: 'application/yaml',
  none: 'text/plain; charset=utf-8',
};

/** The per-machine paths (`/m/<token>/<path>`) a boot environment serves, sorted. */
export function listMachinePaths(bootenv: Pick<BootEnv, 'templates'>): string[] {
  return bootenv.templates.map((t) => t.path).sort();
}

/** Which boot environment a machine actually boots: discovery when unknown, else its own. */
export function effectiveBootenv(ctx: ParsedRenderContext): BootEnv {
  if (!ctx.machine.known) return ctx.discovery ?? BUILTIN_DISCOVERY;
  if (!ctx.bootenv) throw new RenderError('context', `machine ${ctx.machine.id} is known but has no boot environment`);
  // "discovery" is every machine's default (MachineCreate; what the central records on discovery): a known
  // machine nothing else was assigned to boots it again, re-reports its facts and stays a task runner.
  if (ctx.bootenv.name === (ctx.discovery ?? BUILTIN_DISCOVERY).name) return ctx.bootenv;
  if (ctx.bootenv.onlyUnknown) throw new RenderError(ctx.bootenv.name, 'boot environment is only for unknown machines and cannot be assigned to a known one');
  return ctx.bootenv;
}

/** Local-disk boot: BIOS boots drive 0x80, UEFI exits to the firmware's next boot entry. */
export function localBootScript(platform: 'pcbios' | 'efi' | undefined, why: string): string {
  const lines = ['#!ipxe', `# underlay: ${why}: boot from local disk`];
  if (platform === 'efi') lines.push('exit');
  else if (platform === 'pcbios') lines.push('sanboot --no-describe --drive 0x80');
  else lines.push('iseq ${platform} efi && exit || sanboot --no-describe --drive 0x80');
  return lines.join('\n') + '\n';
}

export interface BootRendererOptions {
  snippets?: Record<string, string>;
  limits?: Partial<EngineLimits>;
  logger?: Logger;
}

/**
 * Renders a machine's iPXE script and files. Pure: no I/O, no clock; the same context gives the same bytes.
 * Every output passes its validator before it is returned.
 */
export class BootRenderer {
  private readonly engine: TemplateEngine;
  private readonly logger: Logger;

  constructor(opts: BootRendererOptions = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.engine = new TemplateEngine({ snippets: opts.snippets, limits: opts.limits, logger: this.logger });
  }

  /** The iPXE script for `GET /ipxe/script`. */
  ipxeScript(input: RenderContext): string {
    const ctx = parseContext(input);
    const { machine } = ctx;
    let script: string;
    if (machine.known && !machine.netboot) script = localBootScript(machine.platform, 'netboot disallowed');
    else {
      const env = effectiveBootenv(ctx);
      if (env.local) script = localBootScript(machine.platform, `boot environment ${env.name}`);
      else {
        requireParams(env, ctx.params);
        const scope = this.scope(ctx, env);
        script =
          env.ipxe !== undefined
            ? this.engine.render(`${env.name}/ipxe`, env.ipxe, scope, this.hooks(ctx))
            : this.defaultScript(ctx, env, scope);
      }
    }
    validateRendered('ipxe', 'ipxe', script);
    this.logger.debug({ machine: machine.id, bootenv: ctx.bootenv?.name }, 'rendered ipxe script');
    return script;
  }

  /** A file for `GET /m/<token>/<path>`. Throws NoSuchFileError for paths the boot environment does not serve. */
  file(input: RenderContext, path: string): RenderedFile {
    const ctx = parseContext(input);
    const env = effectiveBootenv(ctx);
    const clean = path.replace(/^\/+/, '');
    const tpl = env.templates.find((t) => t.path === clean);
    if (!tpl) throw new NoSuchFileError(env.name, clean);
    const name = `${env.name}/${tpl.name}`;
    requireParams(env, ctx.params);
    const body = this.engine.render(name, tpl.template, this.scope(ctx, env), this.hooks(ctx));
    validateRendered(tpl.validate, name, body);
    return { path: clean, template: name, contentType: tpl.contentType ?? CONTENT_TYPES[tpl.validate], body };
  }

  /** The kernel command line a boot environment renders to (one line). */
  kernelCommandLine(input: RenderContext): string {
    const ctx = parseContext(input);
    const env = effectiveBootenv(ctx);
    requireParams(env, ctx.params);
    return this.bootParams(ctx, env, this.scope(ctx, env));
  }

  /**
   * Everything a machine would be served, for previews (`underlay bootenvs preview`, the central's API):
   * the iPXE script and every file, each either rendered or with the error that stops it being served.
   */
  preview(input: RenderContext): BootPreview {
    const attempt = <T>(f: () => T): { ok: true; value: T } | { ok: false; error: RenderError } => {
      try {
        return { ok: true, value: f() };
      } catch (err) {
        if (err instanceof RenderError) return { ok: false, error: err };
        throw err;
      }
    };
    const ctx = parseContext(input);
    const env = attempt(() => effectiveBootenv(ctx));
    const paths = env.ok ? listMachinePaths(env.value) : [];
    return {
      bootenv: env.ok ? env.value.name : null,
      ipxe: attempt(() => this.ipxeScript(input)),
      files: paths.map((p) => ({ path: p, result: attempt(() => this.file(input, p)) })),
    };
  }

  private hooks(ctx: ParsedRenderContext) {
    return { fileUrl: (p: string) => artifactUrl(ctx, p) };
  }

  private scope(ctx: ParsedRenderContext, env: BootEnv): Record<string, unknown> {
    const initrds = env.initrds.map((i, idx) => ({ url: artifactUrl(ctx, i.url), name: initrdName(i, idx), sha256: i.sha256 ?? null }));
    return {
      machine: { ...ctx.machine, mac: ctx.machine.macs[0] ?? null },
      site: ctx.site,
      params: ctx.params,
      bootenv: {
        name: env.name,
        os: env.os,
        install: env.install,
        kernel: env.kernel ? { url: artifactUrl(ctx, env.kernel.url), sha256: env.kernel.sha256 ?? null } : null,
        initrds,
      },
      agent: ctx.agent,
      token: ctx.token,
      urls: { machineBase: ctx.urls.machineBase, done: ctx.urls.done },
      platform: ctx.machine.platform ?? null,
      // The discovery environment keeps certificates under /run; everything else boots an installed OS.
      pki: pkiTemplateContext(ctx.serviceCas ?? [], env.name === (ctx.discovery ?? BUILTIN_DISCOVERY).name ? 'discovery' : 'os'),
    };
  }

  private bootParams(ctx: ParsedRenderContext, env: BootEnv, scope: Record<string, unknown>): string {
    // One line: a newline from a template or a param value would start a new iPXE command.
    return this.engine.render(`${env.name}/bootParams`, env.bootParams, scope, this.hooks(ctx)).replace(/\s+/g, ' ').trim();
  }

  private defaultScript(ctx: ParsedRenderContext, env: BootEnv, scope: Record<string, unknown>): string {
    if (!env.kernel) throw new RenderError(env.name, 'boot environment has neither a kernel nor an ipxe script');
    const platform = ctx.machine.platform;
    // UEFI needs named initrds and `initrd=<name>` on the kernel line; with the platform unknown use that
    // form too, which BIOS iPXE also accepts.
    const named = platform !== 'pcbios';
    const initrds = env.initrds.map((i, idx) => ({ url: artifactUrl(ctx, i.url), name: initrdName(i, idx) }));
    const kernelArgs = [
      ...(named ? initrds.map((i) => `initrd=${i.name}`) : []),
      this.bootParams(ctx, env, scope),
    ].filter((s) => s !== '');
    const lines = [
      '#!ipxe',
      `# underlay: boot environment ${env.name} (${platform ?? 'any platform'})`,
      'set try:int32 0',
      ':fetch',
      'imgfree',
      `kernel ${artifactUrl(ctx, env.kernel.url)}${kernelArgs.length ? ' ' + kernelArgs.join(' ') : ''} || goto failed`,
      ...initrds.map((i) => `initrd ${named ? `--name ${i.name} ` : ''}${i.url} || goto failed`),
      'boot || goto failed',
      ':failed',
      'iseq ${try} 3 && goto give_up || inc try',
      `echo underlay: boot of ${env.name} failed, retry \${try} of 3 in 5 seconds`,
      'sleep 5',
      'goto fetch',
      ':give_up',
      `echo underlay: boot of ${env.name} failed 4 times, rebooting in 30 seconds`,
      'sleep 30',
      'reboot',
    ];
    return lines.join('\n') + '\n';
  }
}

function parseContext(input: RenderContext): ParsedRenderContext {
  const parsed = RenderContextSchema.safeParse(input);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join('.') || '/'}: ${i.message}`).join('; ');
    throw new TemplateRenderError('context', `bad render context: ${reason}`);
  }
  return parsed.data;
}

function requireParams(env: BootEnv, params: Record<string, unknown>): void {
  for (const p of env.requiredParams) {
    if (params[p] === undefined || params[p] === null) throw new MissingParamError(env.name, p);
  }
}

function initrdName(i: { name?: string }, idx: number): string {
  return i.name ?? (idx === 0 ? 'main' : `initrd${idx}`);
}

/**
 * Where the machine fetches an artifact: `urls.files` decides (relative paths are the agent's /files/;
 * an absolute upstream URL becomes the agent's content-addressed copy when the site has it, so an
 * air-gapped rack never needs the internet).
 */
function artifactUrl(ctx: ParsedRenderContext, url: string): string {
  const out = ctx.urls.files(url);
  if (typeof out !== 'string' || /\s/.test(out) || out === '') throw new RenderError('context', `files URL for "${url}" is empty or contains whitespace`);
  return out;
}

// One-call forms. Renderers (and their parsed-template caches) are kept per snippet map.
const renderers = new WeakMap<object, BootRenderer>();
const noSnippets = {};
function rendererFor(ctx: RenderContext): BootRenderer {
  const key = ctx.snippets ?? noSnippets;
  let r = renderers.get(key);
  if (!r) renderers.set(key, (r = new BootRenderer({ snippets: ctx.snippets })));
  return r;
}

/** The machine's iPXE script (discovery if unknown, local boot if netboot is off or its bootenv is local). */
export function renderIpxeScript(ctx: RenderContext): string {
  return rendererFor(ctx).ipxeScript(ctx);
}

/** A per-machine file (`/m/<token>/<path>`), rendered and validated. */
export function renderFile(ctx: RenderContext, path: string): RenderedFile {
  return rendererFor(ctx).file(ctx, path);
}
