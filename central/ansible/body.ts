import { createHash } from 'node:crypto';
import type { Machine } from '../../shared/api/resources.js';
import type { InventorySource } from './context.js';
import { ByteWriter } from './byte-writer.js';
import { plan, type ViewOptions } from './plan.js';

/**
 * The `--list` document as UTF-8 bytes, written in one pass from the plan: the groups as a head, then
 * the hostvars in blocks of hosts, each block one string encoded once. No document object is built.
 *
 * Blocks are content-defined: a block ends after a host whose name hashes to a boundary (about one
 * host in `blockSize`), so a machine added or removed changes only its own block, never shifts the
 * others. A block's bytes and sha256 are kept between renders (`HostBlockCache`) and reused while its
 * hosts are the same machine documents with the same inherited params and service memberships. The
 * ETag hashes the head, the block digests and the tail: a function of the bytes alone (blocks depend
 * only on host names), whatever was cached.
 */

export const DEFAULT_BLOCK_SIZE = 256;

interface Block {
  machines: Machine[];
  /** Per host: what it inherits (its layer's JSON) and its service memberships, as serialised. */
  layers: string[];
  mems: string[];
  /** `,"name":{…}` for each host. */
  bytes: Buffer;
  digest: Buffer;
}

/**
 * Serialised hostvars blocks kept between renders, per view (site/group filter), keyed by each block's
 * first host. Store documents are replaced on every write, never changed in place (the store's
 * whole-document convention), so document identity tells an unchanged machine. Any change to which
 * params are secret drops everything.
 */
export class HostBlockCache {
  private views = new Map<string, Map<string, Block>>();
  private signature: string | null = null;
  /** Blocks reused / serialised, over the cache's life. */
  hits = 0;
  misses = 0;

  /** `blockSize`: the expected hosts per block, a power of two. */
  constructor(
    readonly blockSize = DEFAULT_BLOCK_SIZE,
    private readonly maxViews = 8,
  ) {
    if (!Number.isInteger(Math.log2(blockSize))) throw new Error(`block size must be a power of two, not ${blockSize}`);
  }

  /** The blocks of the last render of a view; the render replaces them with `done`. */
  begin(signature: string, view: string): Map<string, Block> | undefined {
    if (signature !== this.signature) {
      this.views.clear();
      this.signature = signature;
    }
    return this.views.get(view);
  }

  done(view: string, blocks: Map<string, Block>): void {
    compact(blocks.values());
    this.views.delete(view);
    if (this.views.size >= this.maxViews) this.views.delete(this.views.keys().next().value!);
    this.views.set(view, blocks);
  }
}

/**
 * Blocks of a cold render are slices of one large buffer, which stays allocated while any of them is
 * kept. Once less than half of such a buffer is still in use, its remaining blocks get copies of their
 * own, so replaced blocks never hold more than about as much memory again as the document.
 */
export function compact(blocks: Iterable<{ bytes: Buffer | null }>): void {
  const used = new Map<ArrayBufferLike, number>();
  const list = [...blocks];
  for (const b of list) if (b.bytes && b.bytes.buffer.byteLength !== b.bytes.length) used.set(b.bytes.buffer, (used.get(b.bytes.buffer) ?? 0) + b.bytes.length);
  for (const b of list) {
    if (!b.bytes) continue;
    const n = used.get(b.bytes.buffer);
    if (n !== undefined && n * 2 < b.bytes.buffer.byteLength) {
      const own = Buffer.allocUnsafeSlow(b.bytes.length);
      b.bytes.copy(own);
      b.bytes = own;
    }
  }
}

export interface RenderOptions extends ViewOptions {
  /** Reuse serialised hostvars blocks of unchanged machines from earlier renders (the route keeps one). */
  fragments?: HostBlockCache;
}

/** A rendered document: UTF-8 chunks (sent as they are, no final copy), its length and strong ETag. */
export class RenderedBody {
  readonly length: number;
  constructor(
    readonly chunks: Buffer[],
    readonly etag: string,
    readonly hosts: number,
  ) {
    let n = 0;
    for (const c of chunks) n += c.length;
    this.length = n;
  }
  /** The whole document in one buffer (a copy; for tests and small documents). */
  get bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** FNV-1a over the name's UTF-16 code units: decides block boundaries, so it must never change. */
export function nameHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const TAIL = Buffer.from('}}}');
const writer = new ByteWriter();

/**
 * Renders straight to JSON bytes, byte for byte `JSON.stringify(renderInventory(src, opts))`; the
 * ETag is a strong validator (sha256; see the module comment).
 */
export function renderInventoryBody(src: InventorySource, opts: RenderOptions = {}): RenderedBody {
  const p = plan(src, opts);
  const { ctx } = p;
  let head = `{"all":${JSON.stringify({ children: ['ungrouped', ...p.groups.map(([n]) => n)], vars: p.allVars })},"ungrouped":{"hosts":[]}`;
  for (const [n, g, hosts] of p.groups) head += `,${JSON.stringify(n)}:{"hosts":${JSON.stringify(hosts)}${g.vars ? `,"vars":${JSON.stringify(g.vars)}` : ''}}`;
  const headBytes = Buffer.from(`${head},"_meta":{"hostvars":{`, 'utf8');

  const cache = opts.fragments;
  const blockSize = cache?.blockSize ?? DEFAULT_BLOCK_SIZE;
  const mask = blockSize - 1;
  const viewKey = `${opts.site ?? ''}\0${opts.group ?? ''}\0${opts.prefix ?? ''}`;
  const prev = cache?.begin(ctx.secretSignature(), viewKey);
  const next = new Map<string, Block>();
  const cold = !prev || prev.size === 0;
  const shown = p.selected ? p.selected.size : p.machines.length;
  writer.reset();

  const etag = createHash('sha256');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(headBytes.length);
  etag.update(len).update(headBytes);
  const chunks: Buffer[] = [headBytes];
  let hosts = 0;

  let machines: Machine[] = [];
  let layers: string[] = [];
  let mems: string[] = [];
  const flush = (from: number, to: number) => {
    const old = prev?.get(machines[0]!.name);
    let block = old;
    if (old && old.machines.length === machines.length) {
      for (let j = 0; j < machines.length; j++) {
        if (old.machines[j] !== machines[j] || old.layers[j] !== layers[j] || old.mems[j] !== mems[j]) {
          block = undefined;
          break;
        }
      }
    } else block = undefined;
    if (block) {
      if (cache) cache.hits++;
    } else {
      for (let j = 0, i = from; i < to; i++) {
        const m = p.machines[i]!;
        if (p.selected && !p.selected.has(m.name)) continue;
        ctx.writeHost(writer, m, p.layers[i]!, mems[j++]!, !cold);
      }
      // A render with nothing to reuse: after the first block, size one buffer for all the rest.
      if (cold && hosts === 0) writer.reserve(Math.ceil((writer.pending / machines.length) * 1.1 * (shown - machines.length)) + writer.pending);
      const bytes = writer.take();
      block = { machines, layers, mems, bytes, digest: createHash('sha256').update(bytes).digest() };
      if (cache) cache.misses++;
    }
    next.set(machines[0]!.name, block);
    chunks.push(hosts === 0 ? block.bytes.subarray(1) : block.bytes);
    etag.update(block.digest);
    hosts += machines.length;
    machines = [];
    layers = [];
    mems = [];
  };

  let from = 0;
  for (let i = 0; i < p.machines.length; i++) {
    const m = p.machines[i]!;
    if (p.selected && !p.selected.has(m.name)) continue;
    if (machines.length === 0) from = i;
    machines.push(m);
    layers.push(p.layers[i]!.json);
    mems.push(p.mems[i]!);
    if ((nameHash(m.name) & mask) === mask || machines.length >= 4 * blockSize) flush(from, i + 1);
  }
  if (machines.length > 0) flush(from, p.machines.length);
  writer.reset();
  cache?.done(viewKey, next);

  chunks.push(TAIL);
  etag.update(TAIL);
  return new RenderedBody(chunks, `"${etag.digest('base64url').slice(0, 32)}"`, hosts);
}
