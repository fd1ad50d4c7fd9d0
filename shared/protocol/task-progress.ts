import { z } from 'zod';

const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * Progress of a long machine task (image-deploy), carried by `running` reports: runner → agent →
 * central, kept on the task as `progress` (the latest one) and shown by `underlay tasks show`.
 * `phase`: write (streaming and writing the disk), verify (reading it back), grow (partition and
 * filesystem), seed (config and credential). Byte counts are of the raw disk (`bytesWritten`/`rawSize`)
 * and of the artifact as served (`bytesFetched`/`size`, compressed).
 */
export const TaskProgress = z
  .object({
    phase: z.enum(['write', 'verify', 'grow', 'seed']),
    bytesWritten: Count.optional(),
    rawSize: Count.optional(),
    bytesFetched: Count.optional(),
    size: Count.optional(),
    rateBytesPerSec: Count.optional(),
    elapsedSec: Count.optional(),
  })
  .strict();
export type TaskProgress = z.infer<typeof TaskProgress>;

/** Why a machine task failed, as a short code (image-deploy: download-failed, hash-mismatch, …). */
export const FailureReason = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/);
