import type { ValidateFunction } from 'ajv';
import { createAjv, formatAjvErrors } from './ajv.js';
import { ParamDefinitionSchema, ParamValuesSchema, type ParamDefinition, type ParamDefinitionInput, type ParamValues } from './definition.js';

/** Where a resolved value came from, most specific first. */
export type ParamSource = 'machine' | `profile:${string}` | `site:${string}` | 'global' | 'default';

export interface ResolvedParam {
  value: unknown;
  source: ParamSource;
  secret: boolean;
}

export type ResolvedParams = Record<string, ResolvedParam>;

/** The layers a machine's params come from. Profiles are in the machine's order: the first wins. */
export interface ParamLayers {
  machine?: ParamValues;
  profiles?: Array<{ name: string; params: ParamValues }>;
  site?: { name: string; params: ParamValues };
  global?: ParamValues;
}

/** A param failed validation (or is unknown when unknown params are rejected). Names the param and where it came from. */
export class ParamError extends Error {
  override readonly name = 'ParamError';
  constructor(
    readonly param: string,
    readonly reason: string,
    readonly source?: ParamSource,
  ) {
    super(`param "${param}"${source ? ` (from ${source})` : ''}: ${reason}`);
  }
}

export interface ParamResolverOptions {
  /** `allow` (default): params without a definition resolve unvalidated; `reject`: they are an error. */
  unknownParams?: 'allow' | 'reject';
}

/**
 * Resolves params machine → profiles (in order) → site → global → definition default.
 * Definitions are validated and their JSON schemas compiled once, at construction.
 */
export class ParamResolver {
  private readonly defs = new Map<string, { def: ParamDefinition; validate: ValidateFunction }>();
  private readonly unknownParams: 'allow' | 'reject';

  constructor(definitions: readonly ParamDefinitionInput[], opts: ParamResolverOptions = {}) {
    this.unknownParams = opts.unknownParams ?? 'allow';
    const ajv = createAjv();
    for (const input of definitions) {
      const parsed = ParamDefinitionSchema.safeParse(input);
      const name = typeof (input as { name?: unknown })?.name === 'string' ? (input as { name: string }).name : '?';
      if (!parsed.success) throw new ParamError(name, `bad definition: ${parsed.error.issues.map((i) => `${i.path.join('.') || '/'}: ${i.message}`).join('; ')}`);
      const def = parsed.data;
      if (this.defs.has(def.name)) throw new ParamError(def.name, 'defined twice');
      let validate: ValidateFunction;
      try {
        validate = ajv.compile(def.schema);
      } catch (err) {
        throw new ParamError(def.name, `bad JSON schema: ${(err as Error).message}`);
      }
      if (def.default !== undefined && !validate(def.default)) {
        throw new ParamError(def.name, `default does not match its schema: ${formatAjvErrors(validate.errors)}`, 'default');
      }
      this.defs.set(def.name, { def, validate });
    }
  }

  definition(name: string): ParamDefinition | undefined {
    return this.defs.get(name)?.def;
  }

  /** Validates one value against its definition (for the central to check writes). */
  check(name: string, value: unknown, source?: ParamSource): void {
    const entry = this.defs.get(name);
    if (!entry) {
      if (this.unknownParams === 'reject') throw new ParamError(name, 'no such param is defined', source);
      return;
    }
    if (!entry.validate(value)) throw new ParamError(name, formatAjvErrors(entry.validate.errors), source);
  }

  resolve(layers: ParamLayers): ResolvedParams {
    const ordered: Array<{ source: ParamSource; values: ParamValues }> = [];
    const layer = (source: ParamSource, values: unknown) => {
      const parsed = ParamValuesSchema.safeParse(values ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ParamError(String(issue.path[0] ?? '?'), issue.message, source);
      }
      ordered.push({ source, values: parsed.data });
    };
    layer('machine', layers.machine);
    for (const p of layers.profiles ?? []) layer(`profile:${p.name}`, p.params);
    if (layers.site) layer(`site:${layers.site.name}`, layers.site.params);
    layer('global', layers.global);

    const out: ResolvedParams = Object.create(null) as ResolvedParams;
    const names = new Set<string>(this.defs.keys());
    for (const { values } of ordered) for (const k of Object.keys(values)) names.add(k);

    for (const name of [...names].sort()) {
      const entry = this.defs.get(name);
      const hit = ordered.find((l) => Object.hasOwn(l.values, name) && l.values[name] !== undefined);
      if (hit) {
        const value = hit.values[name];
        this.check(name, value, hit.source);
        out[name] = { value, source: hit.source, secret: entry?.def.secret ?? false };
      } else if (entry && entry.def.default !== undefined) {
        out[name] = { value: structuredClone(entry.def.default), source: 'default', secret: entry.def.secret };
      }
    }
    return out;
  }
}

/** One-shot form of `new ParamResolver(definitions, opts).resolve(layers)`. */
export function resolveParams(definitions: readonly ParamDefinitionInput[], layers: ParamLayers, opts?: ParamResolverOptions): ResolvedParams {
  return new ParamResolver(definitions, opts).resolve(layers);
}

/** Just the values, for rendering. */
export function paramValues(resolved: ResolvedParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resolved)) out[k] = v.value;
  return out;
}

/** Values with secrets masked, for previews, logs and API responses. */
export function redactSecrets(resolved: ResolvedParams, mask = '[secret]'): ResolvedParams {
  const out: ResolvedParams = {};
  for (const [k, v] of Object.entries(resolved)) out[k] = v.secret ? { ...v, value: mask } : v;
  return out;
}
