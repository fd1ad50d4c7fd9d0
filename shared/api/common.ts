import { z } from 'zod';
import { MAX_PARAM_DEPTH, valueDepth } from '../util/json-depth.js';

/** Object names: what operators type on the CLI and Ansible sees (before slugging). */
export const Name = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-", starting with a letter or digit');

export const Mac = z
  .string()
  .transform((s) => s.trim().toLowerCase().replace(/-/g, ':'))
  .pipe(z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'a MAC address like 52:54:00:12:34:56'));

export const Ipv4 = z.ipv4();

export const Timestamps = {
  createdAt: z.string(),
  updatedAt: z.string(),
};

/** Param values by name; names are lower-case identifiers so templates can use `params.<name>`. */
/** A param value: any JSON, nested at most MAX_PARAM_DEPTH levels (deeper values are refused, never stored). */
export const ParamValue = z.unknown().refine((v) => valueDepth(v, MAX_PARAM_DEPTH) <= MAX_PARAM_DEPTH, `param values nest at most ${MAX_PARAM_DEPTH} levels deep`);
export const ParamValues = z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'param names are lower-case identifiers: [a-z][a-z0-9_]*').max(128), ParamValue);

export function pageOf<T extends z.ZodTypeAny>(item: T, id: string) {
  return z
    .object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })
    .meta({ id });
}

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error', description: 'Every error has this shape.' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ListQueryParams = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});
