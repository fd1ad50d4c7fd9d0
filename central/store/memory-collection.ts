import { ConflictError, type CollectionSpec, type Doc, type ListQuery, type Page } from './types.js';

/**
 * One collection held in memory with its unique indexes. Used by the file store; no I/O here.
 *
 * `docs` and the indexes hold every write applied so far, durable or not: readers and writers see a
 * write from the moment it is applied, so a read-modify-write in one turn (a one-time token's use, a
 * PATCH) builds on the writes before it and never loses one. The committed version of each document
 * changed by a write still in flight is kept in `inflight` until the write is durable (`settle`): the
 * snapshot (`committedDocs`) is taken from it, and if the journal refuses the writes in flight they are
 * all rolled back to it at once (`rollbackInflight`).
 */
export class MemoryCollection {
  readonly docs = new Map<string, Doc>();
  private readonly indexes = new Map<string, Map<string, string>>();
  /** Committed versions (undefined: absent) of documents with writes in flight, and how many. */
  private readonly inflight = new Map<string, { doc: Doc | undefined; writes: number }>();

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

  /** Documents as committed (durable). */
  committedDocs(): Doc[] {
    if (this.inflight.size === 0) return [...this.docs.values()];
    const out: Doc[] = [];
    for (const [id, d] of this.docs) if (!this.inflight.has(id)) out.push(d);
    for (const f of this.inflight.values()) if (f.doc) out.push(f.doc);
    return out;
  }

  count(): number {
    return this.docs.size;
  }

  /** A write to `id` is about to be applied and is not durable yet. */
  begin(id: string): void {
    const f = this.inflight.get(id);
    if (f) f.writes++;
    else this.inflight.set(id, { doc: this.docs.get(id), writes: 1 });
  }

  /** That write is durable: `doc` (undefined for a delete) is now the committed version. */
  settle(id: string, doc: Doc | undefined): void {
    const f = this.inflight.get(id);
    if (!f) return;
    if (--f.writes === 0) this.inflight.delete(id);
    else f.doc = doc;
  }

  /** That write was undone before it reached the journal (the caller restored the document). */
  abandon(id: string): void {
    const f = this.inflight.get(id);
    if (f && --f.writes === 0) this.inflight.delete(id);
  }

  /** Every write in flight failed: back to the committed state. */
  rollbackInflight(): void {
    for (const [id, f] of this.inflight) {
      if (f.doc) this.put(f.doc);
      else this.delete(id);
    }
    this.inflight.clear();
  }

  /** Throws ConflictError if `doc` claims a unique value held by another document. */
  checkUnique(doc: Doc): void {
    for (const u of this.spec.unique) {
      const idx = this.indexes.get(u.field)!;
      const seen = new Set<string>();
      for (const v of u.values(doc)) {
        if (seen.has(v)) throw new ConflictError(this.spec.name, u.field, v);
        seen.add(v);
        const holder = idx.get(v);
        if (holder !== undefined && holder !== doc.id) throw new ConflictError(this.spec.name, u.field, v);
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
