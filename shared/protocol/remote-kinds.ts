import { z } from 'zod';
import { base64 } from '../util/base64.js';

/**
 * Payloads of the machine-target kinds the Ansible connection plugin uses (`exec`, `put-file`,
 * `fetch-file`): Ansible's work carried to a machine's runner as signed tasks (docs/ansible.md). The
 * limits keep one task well under the signed envelope's 1.5 MB; files travel in chunks of CHUNK_BYTES.
 */

/** Raw bytes per put-file / fetch-file chunk (512 KiB; 699,052 characters of base64). */
export const CHUNK_BYTES = 512 * 1024;
/** Base64 length of CHUNK_BYTES. */
export const CHUNK_B64 = Math.ceil(CHUNK_BYTES / 3) * 4;
/** Raw bytes of stdin an exec carries inline; more goes first as a put-file (the plugin does it). */
export const EXEC_STDIN_BYTES = CHUNK_BYTES;
/** stdout (and stderr, each) an exec report carries inline; the rest stays in the task's directory for fetch-file. */
export const EXEC_INLINE_STDOUT = 384 * 1024;
export const EXEC_INLINE_STDERR = 128 * 1024;

/** An absolute path on the machine: no NUL, no line breaks, at most 4,096 bytes. */
export const MachinePath = z
  .string()
  .min(2)
  .max(4096)
  .regex(/^\/[^\0\r\n]*$/, 'an absolute path without NUL or line breaks');

const timeoutSec = z.number().int().min(1).max(86_400).optional();

export const ExecPayload = z
  .object({
    /** The command line, run with `sh -c` (base64: it may span lines). */
    cmdB64: base64().min(1).max(131_072),
    /** stdin (Ansible's pipelining sends the module here). */
    stdinB64: base64().max(CHUNK_B64).optional(),
    /** A file already on the machine (a put-file) to use as stdin instead; removed after the run. */
    stdinPath: MachinePath.optional(),
    timeoutSec,
  })
  .strict()
  .refine((p) => !(p.stdinB64 && p.stdinPath), { message: 'stdinB64 and stdinPath are exclusive', path: ['stdinPath'] });

export const PutFilePayload = z
  .object({
    path: MachinePath,
    /** Where this chunk starts; 0 starts a new upload, any other offset must equal what is already written. */
    offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    dataB64: base64().max(CHUNK_B64),
    /** The last chunk: the file is moved into place (atomically, by rename). */
    final: z.boolean(),
    /** Octal permission bits for the file, e.g. "0600". */
    mode: z.string().regex(/^0?[0-7]{3,4}$/).optional(),
  })
  .strict();

export const FetchFilePayload = z
  .object({
    path: MachinePath,
    offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    length: z.number().int().min(1).max(CHUNK_BYTES),
  })
  .strict();

export type ExecPayload = z.infer<typeof ExecPayload>;
export type PutFilePayload = z.infer<typeof PutFilePayload>;
export type FetchFilePayload = z.infer<typeof FetchFilePayload>;
