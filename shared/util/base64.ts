import { z } from 'zod';

/** The base64 alphabet (RFC 4648 §4), up to two `=` of padding at the end. A char-class loop: linear, no backtracking stack. */
const CHARSET = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A padded base64 string (RFC 4648 §4), checked without decoding it: what zod's `z.base64()` accepts,
 * but `z.base64()` also decodes the whole string with Node's `atob` (a JavaScript loop over every
 * character) only to throw the result away. Task payloads carry Ansible modules and file chunks of
 * 100–700 KB of base64, validated on the central and again on the agent (docs/decisions.md).
 */
export function base64() {
  return z.string().regex(CHARSET, 'Invalid base64-encoded string').refine((s) => s.length % 4 === 0, 'Invalid base64-encoded string: its length is not a multiple of 4');
}
