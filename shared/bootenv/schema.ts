import { z } from 'zod';
import { ParamName } from '../params/definition.js';

export const VALIDATORS = ['ignition', 'cloud-config', 'kickstart', 'preseed', 'ipxe', 'json', 'yaml', 'none'] as const;

/** A relative path without `..`, empty or absolute segments: `discovery/vmlinuz`, `latest/meta-data/hostname`. */
const safeRelativePath = (what: string) =>
  z
    .string()
    .min(1)
    .max(512)
    .refine((p) => !p.startsWith('/') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), `${what} must be a relative path without "." or ".." segments`)
    .refine((p) => /^[A-Za-z0-9._~+@=,/-]+$/.test(p), `${what} may only use URL-safe characters [A-Za-z0-9._~+@=,/-]`);

/**
 * An artifact URL: absolute http(s) upstream URL, or a path relative to the agent's `/files/`.
 * No whitespace either way: it lands on an iPXE command line.
 */
export const ArtifactUrl = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((u, ctx) => {
    if (/\s/.test(u)) ctx.addIssue({ code: 'custom', message: 'artifact URL must not contain whitespace' });
    else if (/^[a-z][a-z0-9+.-]*:/i.test(u)) {
      if (!/^https?:\/\//.test(u) || !URL.canParse(u)) ctx.addIssue({ code: 'custom', message: 'artifact URL must be http(s)://… or a relative path served under /files/' });
    } else if (u.startsWith('/') || u.split('/').some((s) => s === '' || s === '.' || s === '..'))
      ctx.addIssue({ code: 'custom', message: 'relative artifact URL must be a relative path without "." or ".." segments' });
    else if (!/^[A-Za-z0-9._~+@=,/-]+$/.test(u)) ctx.addIssue({ code: 'custom', message: 'relative artifact URL may only use [A-Za-z0-9._~+@=,/-]' });
  });

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 is 64 lower-case hex digits');

export const BootEnvName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'boot environment names are lower-case [a-z0-9-], up to 63 characters');

export const BootTemplateSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'template names are [A-Za-z0-9._-]'),
  /** Where the machine fetches it: `/m/<token>/<path>`. */
  path: safeRelativePath('template path').refine((p) => p !== 'done', '"done" is reserved for the install callback'),
  template: z.string(),
  contentType: z.string().min(1).optional(),
  validate: z.enum(VALIDATORS).default('none'),
});

const bootEnvFields = {
  name: BootEnvName,
  description: z.string().optional(),
  os: z.object({ family: z.string().min(1), version: z.string().optional() }),
  kernel: z.object({ url: ArtifactUrl, sha256: Sha256.optional() }).optional(),
  initrds: z
    .array(z.object({ url: ArtifactUrl, sha256: Sha256.optional(), name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional() }))
    .default([]),
  /** Kernel command line (a template); collapsed to one line when rendered. */
  bootParams: z.string().default(''),
  requiredParams: z.array(ParamName).default([]),
  optionalParams: z.array(ParamName).default([]),
  /** A custom iPXE script template; without it one is generated from kernel, initrds and bootParams. */
  ipxe: z.string().optional(),
  /** Only for machines the inventory does not know (discovery); cannot be assigned to a known machine. */
  onlyUnknown: z.boolean().default(false),
  /** Boot from the local disk. */
  local: z.boolean().optional(),
  /** Installs to disk: its templates POST `urls.done` on success, so the agent flips the machine to local boot. */
  install: z.boolean().default(false),
  /**
   * Knowingly names upstream kernel/initrd URLs without a sha256 (a rolling upstream path whose hash cannot
   * be known in advance): fetching them needs `--allow-unpinned` until the operator pins them. The
   * library refuses an unpinned upstream URL in a bootenv not marked so (shared/bootenv/pinning.ts).
   */
  unpinned: z.boolean().optional(),
};

function checkBootEnv(
  env: { name: string; kernel?: unknown; ipxe?: string; local?: boolean; templates: Array<{ name: string; path: string }>; initrds: Array<{ name?: string }>; requiredParams: string[]; optionalParams: string[] },
  ctx: z.RefinementCtx,
) {
  const dup = (list: string[]) => list.filter((x, i) => list.indexOf(x) !== i);
  for (const n of dup(env.templates.map((t) => t.name))) ctx.addIssue({ code: 'custom', path: ['templates'], message: `template name "${n}" used twice` });
  for (const p of dup(env.templates.map((t) => t.path))) ctx.addIssue({ code: 'custom', path: ['templates'], message: `template path "${p}" used twice` });
  for (const n of dup(env.initrds.flatMap((i) => (i.name ? [i.name] : [])))) ctx.addIssue({ code: 'custom', path: ['initrds'], message: `initrd name "${n}" used twice` });
  for (const p of env.requiredParams.filter((p) => env.optionalParams.includes(p)))
    ctx.addIssue({ code: 'custom', path: ['optionalParams'], message: `param "${p}" is both required and optional` });
  if (!env.local && !env.kernel && env.ipxe === undefined)
    ctx.addIssue({ code: 'custom', path: ['kernel'], message: 'a boot environment that is not local needs a kernel or an ipxe script' });
}

export const BootEnvSchema = z
  .object({ ...bootEnvFields, templates: z.array(BootTemplateSchema).default([]) })
  .strict()
  .superRefine(checkBootEnv);

export type BootEnv = z.output<typeof BootEnvSchema>;
export type BootEnvInput = z.input<typeof BootEnvSchema>;
export type BootTemplate = z.output<typeof BootTemplateSchema>;

/** The on-disk form (`bootenv.yaml`): templates and the iPXE script may live in files next to it. */
export const BootEnvFileSchema = z
  .object({
    ...bootEnvFields,
    ipxeFile: safeRelativePath('ipxeFile').optional(),
    templates: z
      .array(
        BootTemplateSchema.omit({ template: true }).extend({
          template: z.string().optional(),
          templateFile: safeRelativePath('templateFile').optional(),
        }),
      )
      .default([]),
  })
  .strict()
  .refine((f) => !(f.ipxe !== undefined && f.ipxeFile !== undefined), { message: 'give ipxe or ipxeFile, not both', path: ['ipxeFile'] })
  .superRefine((f, ctx) =>
    f.templates.forEach((t, i) => {
      if ((t.template === undefined) === (t.templateFile === undefined))
        ctx.addIssue({ code: 'custom', path: ['templates', i], message: `template "${t.name}" needs exactly one of template or templateFile` });
    }),
  );

export type BootEnvFile = z.output<typeof BootEnvFileSchema>;

/** Parses a boot environment (API body, stored record); throws a ZodError listing every problem. */
export function parseBootEnv(input: unknown): BootEnv {
  return BootEnvSchema.parse(input);
}
