import { z } from 'zod';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256');

/** How an image artifact is stored: the bytes the agent serves, and what they decompress to. */
export const ImageFormat = z.enum(['raw', 'zstd', 'xz', 'gzip']);
export type ImageFormat = z.infer<typeof ImageFormat>;

/**
 * A disk image as a deploy needs it: the content-addressed artifact the agent serves at
 * `/files/sha256/<sha256>` (`size` bytes, `format`), and the raw disk it decompresses to (`rawSha256`
 * over exactly `rawSize` bytes: what the runner verifies after writing). An image artifact in the central
 * carries these fields under `image` (plus its `name`).
 */
export const ImageRef = z
  .object({
    name: z.string().min(1).max(128),
    sha256: Sha256,
    size: z.number().int().min(1),
    format: ImageFormat,
    rawSha256: Sha256,
    rawSize: z.number().int().min(512),
  })
  .strict();
export type ImageRef = z.infer<typeof ImageRef>;
