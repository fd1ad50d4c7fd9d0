/**
 * `JSON.stringify(s)` for a string, byte for byte, without its call and fresh copy when nothing needs
 * escaping (the common case of inventory values: names, addresses, serials, UUIDs): the quotes are
 * concatenated around the string itself. JSON.stringify escapes `"`, `\`, U+0000–U+001F and lone
 * surrogates; a string holding any of those, or any surrogate at all, goes to JSON.stringify.
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}
