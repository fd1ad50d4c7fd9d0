import { MACHINES } from '../machines/resources.js';
import { z } from 'zod';
import { ImageFormat, type ImageRef } from '../../shared/api/images.js';
import type { Doc, Store, WriteOp } from '../store/types.js';
import { ConflictError, InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';

export const ARTIFACTS = 'artifacts';

/** How an image artifact decompresses: what `images push` computed (or a build manifest recorded). */
export const ImageMeta = z
  .object({ format: ImageFormat, rawSha256: z.string().regex(/^[0-9a-f]{64}$/), rawSize: z.number().int().min(512) })
  .strict();
export type ImageMeta = z.infer<typeof ImageMeta>;

/** Image names go into URLs and CLI arguments: `debian-12`, `ubuntu-24.04.1`. */
export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Names of plain (non-image) artifacts: free text, or a relative path (`discovery/vmlinuz`) that the
 * artifact then stands in for in every agent's boot directory.
 */
export const ARTIFACT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._~+@=,-]*(\/[A-Za-z0-9][A-Za-z0-9._~+@=,-]*)*$/;

export interface ArtifactDoc extends Doc {
  sha256: string;
  size: number;
  urls: string[];
  name?: string;
  image?: ImageMeta;
  createdAt: string;
}

export interface RecordArtifact {
  sha256: string;
  size: number;
  urls: string[];
  name?: string;
  image?: ImageMeta;
  /** Move `name` to these bytes even if another artifact holds it (that one keeps its bytes, unnamed). */
  replace?: boolean;
}

/** Who still needs an image (a deploying machine, …): each answers with descriptions, empty when none. */
export type ImageUser = (store: Store, image: ImageRef) => string[];

/** Machines whose record names the image (`image`, `deploy.image`, `deployment.image`: a name or an ImageRef). */
export const machinesUsingImage: ImageUser = (store, image) => {
  const names = (v: unknown): boolean =>
    v === image.name || (typeof v === 'object' && v !== null && ((v as { name?: unknown }).name === image.name || (v as { sha256?: unknown }).sha256 === image.sha256));
  return store
    .list<Doc>(MACHINES, { limit: 1_000_000 })
    .items.filter((m) => {
      const d = m as { image?: unknown; deploy?: { image?: unknown }; deployment?: { image?: unknown } };
      return names(d.image) || names(d.deploy?.image) || names(d.deployment?.image);
    })
    .map((m) => `machine ${String((m as { name?: unknown }).name ?? m.id)}`);
};

export function imageRefOf(doc: ArtifactDoc): ImageRef | undefined {
  return doc.image && doc.name ? { name: doc.name, sha256: doc.sha256, size: doc.size, ...doc.image } : undefined;
}

const sameImage = (a: ImageMeta | undefined, b: ImageMeta | undefined) => a?.format === b?.format && a?.rawSha256 === b?.rawSha256 && a?.rawSize === b?.rawSize;

/**
 * The artifact index: content-addressed records (id = sha256), optionally named; named ones with `image`
 * metadata are disk images (`ImageRef`). A name belongs to one artifact: writes that touch names are
 * serialised in this process, so two pushes of one name cannot both win.
 */
export class ArtifactCatalog {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly users: ImageUser[] = [machinesUsingImage],
  ) {}

  byName(name: string): ArtifactDoc | undefined {
    return this.store.list<ArtifactDoc>(ARTIFACTS, { where: { name }, limit: 1 }).items[0];
  }

  images(): ImageRef[] {
    return this.store
      .list<ArtifactDoc>(ARTIFACTS, { sort: 'name', limit: 1_000_000 })
      .items.flatMap((d) => imageRefOf(d) ?? []);
  }

  image(name: string): ImageRef {
    const doc = this.byName(name);
    const ref = doc && imageRefOf(doc);
    if (!ref) throw new NotFoundError(`image "${name}" not found`);
    return ref;
  }

  /** Refuses early (before a large upload) what `record` would refuse for its name. */
  check(r: Omit<RecordArtifact, 'size'>): void {
    if (r.image && !r.name) throw new InvalidError('an image needs a name', [{ path: 'name', message: 'required with format/rawSha256/rawSize' }]);
    if (r.name !== undefined) {
      const re = r.image ? IMAGE_NAME_RE : ARTIFACT_NAME_RE;
      if (!re.test(r.name) || r.name.length > 256)
        throw new InvalidError(`artifact name "${r.name}" is not allowed`, [{ path: 'name', message: r.image ? 'image names are [A-Za-z0-9._-], up to 128 characters' : 'a name or relative path of URL-safe characters' }]);
    }
    const prev = this.store.get<ArtifactDoc>(ARTIFACTS, r.sha256);
    if (!r.replace && prev?.name !== undefined && r.name !== undefined && prev.name !== r.name)
      throw new ConflictError(`these bytes are already stored as "${prev.name}"; pass replace to rename them to "${r.name}"`);
    if (!r.replace && prev?.image && r.image && !sameImage(prev.image, r.image))
      throw new ConflictError(`image "${prev.name}" is already recorded with other raw metadata (${prev.image.format}, raw sha256:${prev.image.rawSha256}); pass replace to overwrite`);
    if (r.name === undefined) return;
    const holder = this.byName(r.name);
    if (holder && holder.sha256 !== r.sha256 && !r.replace)
      throw new ConflictError(`name "${r.name}" already belongs to sha256:${holder.sha256}; pass replace (CLI: --replace) to point it at sha256:${r.sha256}`);
  }

  /** Records stored bytes (idempotent for the same bytes, name and metadata). */
  record(r: RecordArtifact): Promise<ArtifactDoc> {
    return this.serial(async () => {
      this.check(r);
      const prev = this.store.get<ArtifactDoc>(ARTIFACTS, r.sha256);
      const name = r.name ?? prev?.name;
      const image = r.image ?? (r.name === undefined || r.name === prev?.name ? prev?.image : undefined);
      const doc: ArtifactDoc = {
        id: r.sha256,
        sha256: r.sha256,
        size: r.size,
        urls: [...new Set([...(prev?.urls ?? []), ...r.urls])],
        ...(name !== undefined ? { name } : {}),
        ...(image ? { image } : {}),
        createdAt: prev?.createdAt ?? new Date().toISOString(),
      };
      const ops: WriteOp[] = [];
      const holder = r.name === undefined ? undefined : this.byName(r.name);
      let unnamed: ArtifactDoc | undefined;
      if (holder && holder.id !== doc.id) {
        const { name: _n, image: _i, ...rest } = holder;
        unnamed = rest as ArtifactDoc;
        ops.push({ type: 'put', collection: ARTIFACTS, doc: unnamed });
      }
      ops.push({ type: 'put', collection: ARTIFACTS, doc });
      await this.store.commit(ops);
      return doc;
    });
  }

  /** Forgets an image nothing uses; returns its sha256 so the caller can remove the bytes. */
  deleteImage(name: string): Promise<ImageRef> {
    return this.serial(async () => {
      const ref = this.image(name);
      const users = this.users.flatMap((u) => u(this.store, ref));
      if (users.length) throw new ConflictError(`image "${name}" is in use by ${users.join(', ')}`);
      await this.store.delete(ARTIFACTS, ref.sha256);
      return ref;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
