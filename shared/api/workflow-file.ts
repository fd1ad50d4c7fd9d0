import { parseDocument } from 'yaml';
import { InvalidError } from '../errors/domain-errors.js';
import { MAX_JSON_DEPTH, jsonTextDepth, valueDepth } from '../util/json-depth.js';
import { WorkflowCreate } from './workflows.js';

/** Largest workflow file read (a workflow is a page of YAML; anything near this is a mistake or an attack). */
export const MAX_WORKFLOW_FILE_BYTES = 1_000_000;

/**
 * Parses a workflow file (YAML, or JSON, which is YAML too) and validates it: bounded size, bounded
 * nesting, aliases limited (no billion laughs), duplicate keys and unknown fields refused. Throws
 * InvalidError with the paths that are wrong.
 */
export function parseWorkflowFile(text: string): WorkflowCreate {
  if (Buffer.byteLength(text) > MAX_WORKFLOW_FILE_BYTES) throw new InvalidError(`workflow file is over ${MAX_WORKFLOW_FILE_BYTES} bytes`);
  if (jsonTextDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new InvalidError(`workflow nests deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true });
    if (doc.errors.length > 0) throw new InvalidError(`not valid YAML or JSON: ${doc.errors[0]!.message.split('\n')[0]}`);
    value = doc.toJS({ maxAliasCount: 50 });
  } catch (e) {
    if (e instanceof InvalidError) throw e;
    throw new InvalidError(`workflow file: ${(e as Error).message.split('\n')[0]}`);
  }
  if (valueDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new InvalidError(`workflow nests deeper than ${MAX_JSON_DEPTH} levels`);
  const r = WorkflowCreate.safeParse(value);
  if (!r.success) {
    const details = r.error.issues.map((i) => ({ path: i.path.join('.') || '/', message: i.message }));
    throw new InvalidError(`invalid workflow: ${details.slice(0, 5).map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
  }
  return r.data;
}
