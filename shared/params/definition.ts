import { z } from 'zod';

/** A param name: lower-case identifier usable as `params.<name>` in templates. */
export const ParamName = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'param names are lower-case identifiers: [a-z][a-z0-9_]*')
  .max(128);

/** A JSON schema fragment (validated structurally by ajv when compiled). */
export const JsonSchemaObject = z.record(z.string(), z.unknown());

export const ParamDefinitionSchema = z.object({
  name: ParamName,
  schema: JsonSchemaObject,
  default: z.unknown().optional(),
  secret: z.boolean().default(false),
  description: z.string().optional(),
});

export type ParamDefinition = z.infer<typeof ParamDefinitionSchema>;
export type ParamDefinitionInput = z.input<typeof ParamDefinitionSchema>;

/** Values set at one layer (machine, a profile, a site, global). */
export const ParamValuesSchema = z.record(ParamName, z.unknown());
export type ParamValues = z.infer<typeof ParamValuesSchema>;
