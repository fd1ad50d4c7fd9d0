import { TemplateEngine } from '../../shared/render/engine.js';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import type { PkiTemplateContext } from '../../shared/pki/template-context.js';

/** What a step's templates see: the machine, its resolved params, the run, and every service's members. */
export interface StepScope {
  machine: { id: string; name: string; site: string; rack?: string; address?: string; addresses: string[]; state: string };
  params: Record<string, unknown>;
  run: { id: string; workflow: string; stage: string; step: string; attempt: number };
  services: Record<string, { passing: number; members: { id: string; machine?: string; address: string; port: number; status: string; tags: string[] }[] }>;
  /** The service CAs and where the machine's runner keeps their files (shared/pki/template-context.ts). */
  pki: PkiTemplateContext;
}

/** Bounded strings per payload and output sizes: a template cannot blow up a signed task. */
const MAX_RENDERED_CHARS = 1_000_000;

const engine = new TemplateEngine({ limits: { renderLimit: 1000, memoryLimit: 5_000_000 } });

/**
 * Renders a step's payload template for one machine: every string leaf is one LiquidJS template (the
 * sandboxed engine of the boot files), rendered separately, so a value from the scope lands inside that
 * one string and can never add keys or change the payload's shape. Values (machine names, params, service
 * addresses: strings that came from machines) are data: the output is never rendered again. Keys are
 * not templates. Throws InvalidError naming the path of the string that failed.
 */
export function renderPayload(template: Record<string, unknown>, scope: StepScope): Record<string, unknown> {
  let total = 0;
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('{')) return v;
      let out: string;
      try {
        out = engine.render(path, v, scope as unknown as Record<string, unknown>);
      } catch (e) {
        throw new InvalidError(`template ${path}: ${(e as Error).message}`, [{ path, message: 'template failed' }]);
      }
      total += out.length;
      if (total > MAX_RENDERED_CHARS) throw new InvalidError(`rendered payload is over ${MAX_RENDERED_CHARS} characters`, [{ path, message: 'too large' }]);
      return out;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, `${path}.${k}`)]));
    return v;
  };
  return walk(template, 'payload') as Record<string, unknown>;
}
