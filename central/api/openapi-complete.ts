/**
 * Completes the served OpenAPI document where route authors left gaps, so it lints clean
 * (`redocly lint`, test/ui/openapi-lint.test.ts) and every operation shows a description and an example
 * in /docs: an operation without a description gets one from its summary and its error responses; a JSON
 * body or response without an example gets one built from its schema (enums, defaults, formats, and for
 * patterned strings the first of a few typical values that matches). Examples an author wrote are kept.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

type Json = Record<string, unknown>;
interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: boolean | Schema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  example?: unknown;
  examples?: unknown[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
}

const FORMATS: Record<string, string> = {
  'date-time': '2026-01-01T12:00:00.000Z',
  date: '2026-01-01',
  uuid: '0b6f8a52-3c1e-4d7a-9a43-2f1c5e7d9b10',
  ipv4: '198.18.0.10',
  ipv6: 'fd00::10',
  uri: 'https://central.example:8443/',
  url: 'https://central.example:8443/',
  email: 'ops@example.com',
  base64: 'aG9zdG5hbWUK',
  byte: 'aG9zdG5hbWUK',
};
/** Typical values tried, in order, against a string's pattern. */
const CANDIDATES = ['web-1', 'facts.cpu.model', '0123456789abcdef', 'dc1', '52:54:00:12:34:56', '0'.repeat(64), '30s', '/dev/vda', '198.18.0.10', '198.18.0.0/24', 'a1', 'ul_example', 'example', 'A', '1', 'web'];

function stringExample(s: Schema, key: string): string {
  if (s.format && FORMATS[s.format]) return FORMATS[s.format];
  const fits = (v: string) => (s.minLength === undefined || v.length >= s.minLength) && (s.maxLength === undefined || v.length <= s.maxLength);
  if (s.pattern) {
    let re: RegExp;
    try {
      re = new RegExp(s.pattern, 'u');
    } catch {
      return 'example';
    }
    return CANDIDATES.find((v) => re.test(v) && fits(v)) ?? 'example';
  }
  const byKey = /mac$/i.test(key) ? '52:54:00:12:34:56' : /sha256/i.test(key) ? '0'.repeat(64) : /address$/i.test(key) ? '198.18.0.10' : /site$/i.test(key) ? 'dc1' : /name$/i.test(key) ? 'web-1' : 'example';
  if (fits(byKey)) return byKey;
  return 'x'.repeat(Math.max(1, s.minLength ?? 1));
}

/** `variant`: which alternative of every oneOf/anyOf to take (another one is tried when an example does not validate). */
export function exampleOf(schema: Schema | undefined, schemas: Record<string, Schema>, key = '', depth = 0, seen: string[] = [], variant = 0): unknown {
  if (!schema || depth > 8) return undefined;
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '');
    if (seen.includes(name)) return undefined;
    return exampleOf(schemas[name], schemas, key, depth, [...seen, name], variant);
  }
  if (schema.example !== undefined) return schema.example;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum?.length) return schema.enum[0];
  const alt = schema.oneOf ?? schema.anyOf;
  if (alt?.length) {
    const usable = alt.filter((a) => (a.type ?? '') !== 'null');
    const list = usable.length ? usable : alt;
    return exampleOf(list[variant % list.length], schemas, key, depth + 1, seen, variant);
  }
  if (schema.allOf?.length) {
    const parts = schema.allOf.map((a) => exampleOf(a, schemas, key, depth + 1, seen, variant));
    return parts.every((p) => p && typeof p === 'object' && !Array.isArray(p)) ? Object.assign({}, ...parts) : parts[0];
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type ?? (schema.properties ? 'object' : undefined)) {
    case 'object': {
      const out: Json = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) {
        if (depth >= 4 && !schema.required?.includes(k)) continue;
        const ex = exampleOf(v, schemas, k, depth + 1, seen, variant);
        if (ex !== undefined) out[k] = ex;
      }
      if (!schema.properties && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        const ex = exampleOf(schema.additionalProperties, schemas, key, depth + 1, seen, variant);
        if (ex !== undefined) out.key = ex;
      }
      return out;
    }
    case 'array': {
      const item = exampleOf(schema.items, schemas, key, depth + 1, seen, variant);
      return item === undefined ? [] : Array.from({ length: Math.max(1, schema.minItems ?? 1) }, () => item);
    }
    case 'string':
      return stringExample(schema, key);
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : Math.min(1, schema.maximum ?? 1));
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return undefined;
  }
}

function describeOperation(op: Json): string {
  const summary = String(op.summary ?? op.operationId ?? 'This operation');
  const errors = Object.entries((op.responses ?? {}) as Record<string, Json>)
    .filter(([code]) => /^[45]/.test(code))
    .map(([code, r]) => `${code} ${String(r.description ?? '')}`.trim());
  return `${summary.replace(/\.$/, '')}.${errors.length ? ` Errors answer with the one error body: ${errors.join('; ')}.` : ''}`;
}

type Check = (schema: Schema, value: unknown) => boolean;

const ALTERNATIVES = new WeakMap<object, boolean>();
/** Whether the schema, or one it refers to, has a oneOf/anyOf. */
function hasAlternatives(schema: Schema, schemas: Record<string, Schema>, seen = new Set<string>()): boolean {
  const known = ALTERNATIVES.get(schema);
  if (known !== undefined) return known;
  const text = JSON.stringify(schema);
  let found = /"(oneOf|anyOf)"/.test(text);
  for (const [, name] of text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
    if (found) break;
    if (seen.has(name) || !schemas[name]) continue;
    seen.add(name);
    found = hasAlternatives(schemas[name], schemas, seen);
  }
  ALTERNATIVES.set(schema, found);
  return found;
}

/** Validates against the document's own schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses). */
function checker(schemas: Record<string, Schema>): Check {
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'doc', components: { schemas } });
  const rebase = (s: Schema) => JSON.parse(JSON.stringify(s).replaceAll('"#/components/schemas/', '"doc#/components/schemas/')) as object;
  return (schema, value) => {
    try {
      // A named schema compiles once (ajv caches it with what it refers to); an inline one each time.
      const validate = schema.$ref ? ajv.getSchema(`doc${schema.$ref}`) : ajv.compile(rebase(schema));
      return validate ? (validate(value) as boolean) : false;
    } catch {
      return false;
    }
  };
}

function fillMedia(content: Json | undefined, schemas: Record<string, Schema>, check: Check): void {
  for (const [type, media] of Object.entries(content ?? {}) as [string, Json][]) {
    if (media.example !== undefined || media.examples !== undefined) continue;
    const schema = media.schema as Schema | undefined;
    if (schema && !schema.$ref) mergeObjectAllOf(schema);
    let ex = exampleOf(schema, schemas);
    // Only a schema with alternatives has other examples to try (validating costs a compile).
    for (let v = 1; v < 4 && schema && ex !== undefined && hasAlternatives(schema, schemas) && !check(schema, ex); v++) {
      const other = exampleOf(schema, schemas, '', 0, [], v);
      if (check(schema, other)) ex = other;
    }
    if (ex !== undefined) media.example = type.startsWith('text/') && typeof ex !== 'string' ? String(ex) : ex;
  }
}

/**
 * An intersection of inline objects (zod's `a.and(b)`) as one object: JSON Schema's allOf with a strict
 * member would reject the other members' properties, which the API's answers do carry.
 */
function mergeObjectAllOf(schema: Schema): void {
  const parts = schema.allOf;
  if (!parts?.length || !parts.every((p) => !p.$ref && (p.type === 'object' || p.properties) && !p.allOf && !p.oneOf && !p.anyOf)) return;
  const merged: Schema = { type: 'object', properties: {}, required: [] };
  for (const p of parts) {
    Object.assign(merged.properties!, p.properties ?? {});
    merged.required!.push(...(p.required ?? []).filter((r) => !merged.required!.includes(r)));
    if (p.additionalProperties === false) merged.additionalProperties = false;
  }
  delete schema.allOf;
  Object.assign(schema, merged);
}

/** Fills descriptions and examples in place and returns the document. */
export function completeOpenApi<D extends Json>(doc: D): D {
  const schemas = ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, Schema>;
  for (const s of Object.values(schemas)) mergeObjectAllOf(s);
  const check = checker(schemas);
  for (const item of Object.values((doc.paths ?? {}) as Record<string, Json>)) {
    for (const [method, op] of Object.entries(item) as [string, Json][]) {
      if (!['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(method)) continue;
      if (!op.description) op.description = describeOperation(op);
      fillMedia((op.requestBody as Json | undefined)?.content as Json | undefined, schemas, check);
      for (const r of Object.values((op.responses ?? {}) as Record<string, Json>)) fillMedia(r.content as Json | undefined, schemas, check);
    }
  }
  return doc;
}
