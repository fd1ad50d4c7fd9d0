import type { ValidateFunction } from 'ajv';
import { parse as parseYaml, parseDocument } from 'yaml';
import { createAjv, formatAjvErrors } from '../params/ajv.js';
import cloudConfigSchema from './schemas/cloud-init-cloud-config-v1.json' with { type: 'json' };
import ignition34 from './schemas/ignition-v3_4.json' with { type: 'json' };
import ignition35 from './schemas/ignition-v3_5.json' with { type: 'json' };
import { InvalidRenderError } from './errors.js';
import { checkIpxeScript } from './ipxe-syntax.js';
import { checkKickstart, checkPreseed } from './text-syntax.js';

export type ValidatorKind = 'ignition' | 'cloud-config' | 'kickstart' | 'preseed' | 'ipxe' | 'json' | 'yaml' | 'none';
export const VALIDATOR_KINDS: readonly ValidatorKind[] = ['ignition', 'cloud-config', 'kickstart', 'preseed', 'ipxe', 'json', 'yaml', 'none'];

/** Vendored schemas declare draft-04 but use nothing draft-04-only; ajv compiles them as its default draft. */
function withoutMetaSchema(schema: object): object {
  const { $schema: _ignored, ...rest } = schema as Record<string, unknown>;
  return rest;
}

let compiled: { ignition: Map<string, ValidateFunction>; cloudConfig: ValidateFunction } | undefined;
function schemas() {
  if (!compiled) {
    const ajv = createAjv();
    compiled = {
      ignition: new Map([
        // 3.3.0 is what Debian's ignition 2.14 applies (it knows 3.4.0 only as experimental). The 3.4 schema
        // only added fields to 3.3's, so it checks 3.3's types; test/render/ignition-validate.test.ts shows
        // it agrees with the real `ignition-validate` on 3.3 configs.
        ['3.3.0', ajv.compile(withoutMetaSchema(ignition34))],
        ['3.4.0', ajv.compile(withoutMetaSchema(ignition34))],
        ['3.5.0', ajv.compile(withoutMetaSchema(ignition35))],
      ]),
      cloudConfig: ajv.compile(withoutMetaSchema(cloudConfigSchema)),
    };
  }
  return compiled;
}

/** Ignition spec versions we can validate (and therefore serve). */
export const IGNITION_VERSIONS: readonly string[] = ['3.3.0', '3.4.0', '3.5.0'];

export function checkIgnition(text: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return [`not JSON: ${(err as Error).message}`];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['top level must be a JSON object'];
  const version = (doc as { ignition?: { version?: unknown } }).ignition?.version;
  if (typeof version !== 'string') return ['ignition.version is missing'];
  const validate = schemas().ignition.get(version);
  if (!validate) return [`unsupported ignition.version "${version}" (supported: ${IGNITION_VERSIONS.join(', ')})`];
  return validate(doc) ? [] : [formatAjvErrors(validate.errors)];
}

export function checkCloudConfig(text: string): string[] {
  const first = text.split('\n', 1)[0]!.trimEnd();
  if (first !== '#cloud-config') return ['first line must be "#cloud-config"'];
  const yamlProblems = checkYaml(text);
  if (yamlProblems.length) return yamlProblems;
  const doc = (parseYaml(text) as unknown) ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) return ['cloud-config must be a YAML mapping'];
  const validate = schemas().cloudConfig;
  return validate(doc) ? [] : [formatAjvErrors(validate.errors)];
}

export function checkJson(text: string): string[] {
  try {
    JSON.parse(text);
    return [];
  } catch (err) {
    return [`not JSON: ${(err as Error).message}`];
  }
}

export function checkYaml(text: string): string[] {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  return doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`);
}

const CHECKS: Record<ValidatorKind, (text: string) => string[]> = {
  ignition: checkIgnition,
  'cloud-config': checkCloudConfig,
  kickstart: checkKickstart,
  preseed: checkPreseed,
  ipxe: checkIpxeScript,
  json: checkJson,
  yaml: checkYaml,
  none: () => [],
};

/** Problems found in `text` by the validator of `kind` (empty: valid). */
export function checkRendered(kind: ValidatorKind, text: string): string[] {
  return CHECKS[kind](text);
}

/** Throws InvalidRenderError (template name + reasons) when `text` fails the validator of `kind`. */
export function validateRendered(kind: ValidatorKind, templateName: string, text: string): void {
  const problems = checkRendered(kind, text);
  if (problems.length) throw new InvalidRenderError(templateName, kind, problems.join('; '));
}
