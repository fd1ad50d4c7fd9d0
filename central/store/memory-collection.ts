import { UniqueConflictError, type CollectionSpec, type Doc, type ListQuery, type Page } from './types.js';

/** One collection held in memory with its unique indexes. Used by the file store; no I/O here. */
export class MemoryCollection {
  readonly docs = new Map<string, Doc>();
  private readonly indexes = new Map<string, Map<string, string>>();

  constructor(readonly spec: CollectionSpec) {
    for (const u of spec.unique) this.indexes.set(u.field, new Map());
  }

  get(id: string): Doc | undefined {
    return this.docs.get(id);
  }

  findUnique(field: string, value: string): Doc | undefined {
    const idx = this.indexes.get(field);
    if (!idx) throw new Error(`${this.spec.name} has no unique index on ${field}`);
    const id = idx.get(value);
    return id === undefined ? undefined : this.docs.get(id);
  }

  /** Throws UniqueConflictError if `doc` claims a unique value held by another document. */
  checkUnique(doc: Doc): void {
    for (const u of this.spec.unique) {
      const idx = this.indexes.get(u.field)!;
      const seen = new Set<string>();
      for (const v of u.values(doc)) {
        if (seen.has(v)) throw new UniqueConflictError(this.spec.name, u.field, v);
        seen.add(v);
        const holder = idx.get(v);
        if (holder !== undefined && holder !== doc.id) throw new UniqueConflictError(this.spec.name, u.field, v);
      }
    }
  }

  put(doc: Doc): void {
    const prev = this.docs.get(doc.id);
    if (prev) this.unindex(prev);
    this.docs.set(doc.id, doc);
    for (const u of this.spec.unique) {
      const idx = this.indexes.get(u.field)!;
      for (const v of u.values(doc)) idx.set(v, doc.id);
    }
  }

  delete(id: string): void {
    const prev = this.docs.get(id);
    if (!prev) return;
    this.unindex(prev);
    this.docs.delete(id);
  }

  private unindex(doc: Doc): void {
    for (const u of this.spec.unique) {
      const idx = this.indexes.get(u.field)!;
      for (const v of u.values(doc)) if (idx.get(v) === doc.id) idx.delete(v);
    }
  }

  list(query: ListQuery = {}): Page<Doc> {
    const where = Object.entries(query.where ?? {});
    let items = [...this.docs.values()];
    if (where.length > 0) items = items.filter((d) => where.every(([k, v]) => matches(d, k, v)));
    const search = query.search?.text.toLowerCase();
    if (search) items = items.filter((d) => query.search!.fields.some((f) => contains(valueAt(d, f), search)));
    const sortKey = query.sort ?? 'name';
    items.sort((a, b) => compare(a[sortKey] ?? a.id, b[sortKey] ?? b.id));
    const offset = query.offset ?? 0;
    const limit = query.limit ?? items.length;
    return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
  }
}

function matches(doc: Doc, path: string, want: unknown): boolean {
  let value: unknown = doc;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return false;
    value = Object.prototype.hasOwnProperty.call(value, part) ? (value as Record<string, unknown>)[part] : undefined;
  }
  if (Array.isArray(value)) return value.some((v) => loose(v, want));
  return loose(value, want);
}

function valueAt(doc: Doc, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = Object.prototype.hasOwnProperty.call(value, part) ? (value as Record<string, unknown>)[part] : undefined;
  }
  return value;
}

/** A string or number field (or an element of an array field) that contains `lowered`. */
function contains(value: unknown, lowered: string): boolean {
  if (Array.isArray(value)) return value.some((v) => contains(v, lowered));
  return (typeof value === 'string' || typeof value === 'number') && String(value).toLowerCase().includes(lowered);
}

function loose(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return String(a).toLowerCase() === String(b).toLowerCase();
}

function compare(a: unknown, b: unknown): number {
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
