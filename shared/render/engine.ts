import { Liquid, type Context, type FS } from 'liquidjs';
import { silentLogger, type Logger } from '../log/logger.js';
import { MissingParamError, TemplateRenderError } from './errors.js';
import { base64Filter, indentFilter, jsonFilter, shellQuoteFilter, yamlFilter } from './filters.js';

/** Snippet names: plain names, never paths. */
const SNIPPET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface EngineLimits {
  /** Max template characters parsed per parse (LiquidJS parseLimit). */
  parseLimit: number;
  /** Max milliseconds per render (LiquidJS renderLimit). */
  renderLimit: number;
  /** Max allocations per render, counted in array/string elements (LiquidJS memoryLimit). */
  memoryLimit: number;
  /** Max tag/output renders per render call (LiquidJS templateLimit). */
  templateLimit: number;
}

export const DEFAULT_LIMITS: EngineLimits = {
  parseLimit: 1_000_000,
  renderLimit: 2_000,
  memoryLimit: 10_000_000,
  templateLimit: 200_000,
};

export interface TemplateEngineOptions {
  /** Named snippets that `{% render 'name' %}` / `{% include 'name' %}` may use. Nothing else is reachable. */
  snippets?: Record<string, string>;
  limits?: Partial<EngineLimits>;
  logger?: Logger;
}

/** Functions a render may call through filters; never put in the template scope itself. */
export interface RenderHooks {
  /** URL of a boot artifact served under the agent's /files/. */
  fileUrl?: (path: string) => string;
}

const HOOKS = Symbol('underlay.render.hooks');

/** An FS over an in-memory map of snippets: no paths, no directories, no disk. */
function snippetFs(snippets: ReadonlyMap<string, string>): FS {
  const get = (file: string): string => {
    const text = snippets.get(file);
    if (text === undefined) throw new Error(`no snippet named "${file}"`);
    return text;
  };
  return {
    exists: async (file) => snippets.has(file),
    existsSync: (file) => snippets.has(file),
    readFile: async (file) => get(file),
    readFileSync: get,
    // Names resolve to themselves: "../x", "/etc/passwd" are simply names no snippet has.
    resolve: (_dir, file) => file,
    contains: async () => true,
    containsSync: () => true,
    sep: '/',
  };
}

/**
 * Turns scope data into plain JSON data: functions, symbols, class instances and prototypes are gone,
 * so a template can only read values (LiquidJS would call a function it finds in scope).
 */
export function toTemplateData<T>(value: T): T {
  return JSON.parse(JSON.stringify(value ?? null)) as T;
}

/**
 * Sandboxed LiquidJS: snippets come only from the in-memory map, only own properties are readable,
 * undefined variables and unknown filters are errors, and parse/render/memory are bounded.
 */
export class TemplateEngine {
  private readonly liquid: Liquid;
  private readonly logger: Logger;
  readonly snippetNames: readonly string[];

  constructor(opts: TemplateEngineOptions = {}) {
    this.logger = opts.logger ?? silentLogger;
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isFinite(v) || v <= 0) throw new TypeError(`engine limit ${k} must be a positive number, got ${String(v)}`);
    }
    const map = new Map<string, string>();
    for (const [name, text] of Object.entries(opts.snippets ?? {})) {
      if (!SNIPPET_NAME.test(name)) throw new TypeError(`snippet name "${name}" must match ${SNIPPET_NAME}`);
      if (typeof text !== 'string') throw new TypeError(`snippet "${name}" must be a string`);
      map.set(name, text);
    }
    this.snippetNames = [...map.keys()].sort();
    this.templateLimit = limits.templateLimit;
    this.liquid = new Liquid({
      fs: snippetFs(map),
      // One virtual root; snippetFs.resolve ignores it, so names never become paths.
      root: ['.'],
      partials: ['.'],
      layouts: ['.'],
      extname: '',
      relativeReference: false,
      dynamicPartials: true,
      ownPropertyOnly: true,
      strictVariables: true,
      strictFilters: true,
      lenientIf: true, // `{% if params.optional %}` and `| default:` work on unset optional params
      jsTruthy: false,
      cache: 256,
      globals: {},
      parseLimit: limits.parseLimit,
      renderLimit: limits.renderLimit,
      memoryLimit: limits.memoryLimit,
    });
    this.liquid.registerFilter('json', jsonFilter);
    this.liquid.registerFilter('base64', base64Filter);
    this.liquid.registerFilter('yaml', yamlFilter);
    this.liquid.registerFilter('indent', indentFilter);
    this.liquid.registerFilter('shell_quote', shellQuoteFilter);
    this.liquid.registerFilter('file_url', function (this: { context: Context }, path: unknown) {
      const hooks = (this.context.globals as Record<symbol, unknown>)[HOOKS] as RenderHooks | undefined;
      if (!hooks?.fileUrl) throw new Error('file_url is not available in this render');
      if (typeof path !== 'string') throw new Error('file_url takes a path string');
      return hooks.fileUrl(path);
    });
  }

  private readonly templateLimit: number;

  // Parsed templates by source text, bounded (oldest dropped first): boot storms render the same sources.
  private readonly parseCache = new Map<string, ReturnType<Liquid['parse']>>();
  private parsed(source: string): ReturnType<Liquid['parse']> {
    let tpl = this.parseCache.get(source);
    if (!tpl) {
      tpl = this.liquid.parse(source);
      if (this.parseCache.size >= 512) this.parseCache.delete(this.parseCache.keys().next().value!);
      this.parseCache.set(source, tpl);
    }
    return tpl;
  }

  /** Parses a template, throwing TemplateRenderError on syntax errors or unknown filters. */
  check(templateName: string, source: string): void {
    try {
      this.liquid.parse(source);
    } catch (err) {
      throw this.wrap(templateName, err);
    }
  }

  /** Renders synchronously. `scope` is reduced to plain data first. */
  render(templateName: string, source: string, scope: Record<string, unknown>, hooks: RenderHooks = {}): string {
    try {
      const tpl = this.parsed(source);
      const out = this.liquid.renderSync(tpl, toTemplateData(scope), {
        globals: { [HOOKS]: hooks },
        templateLimit: this.templateLimit,
      }) as unknown;
      return String(out);
    } catch (err) {
      const wrapped = this.wrap(templateName, err);
      this.logger.debug({ template: templateName, err: wrapped.message }, 'render failed');
      throw wrapped;
    }
  }

  private wrap(templateName: string, err: unknown): TemplateRenderError | MissingParamError {
    const message = err instanceof Error ? err.message : String(err);
    // strictVariables names the missing variable: a missing param is reported as such.
    const m = /undefined variable: params\.([A-Za-z0-9_]+)/.exec(message);
    if (m) return new MissingParamError(templateName, m[1]!);
    return new TemplateRenderError(templateName, message.split('\n')[0]!);
  }
}
