/**
 * JSON nesting limits, checked without recursion so hostile input cannot overflow the stack: on the raw
 * text before `JSON.parse` (HTTP bodies, WebSocket frames) and on parsed values (param values).
 */
export const MAX_JSON_DEPTH = 64;
/** Param values (machine, profile, site, global, defaults) nest at most this deep. */
export const MAX_PARAM_DEPTH = 32;

export class JsonTooDeepError extends Error {
  constructor(readonly limit: number) {
    super(`JSON nested deeper than ${limit} levels`);
  }
}

/**
 * The deepest nesting of objects/arrays in JSON text (strings skipped); stops scanning once past `limit`.
 * A string is skipped with native `indexOf` jumps to its closing quote (a quote preceded by an odd run of
 * backslashes is escaped), not character by character: task payloads carry long base64 strings (an Ansible
 * module on stdin is ~100–300 KB), and every frame and body is checked before it is parsed.
 */
export function jsonTextDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34) {
      i = stringEnd(text, i + 1);
      if (i === -1) return max; // unterminated: JSON.parse reports it
    } else if (ch === 123 || ch === 91) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return max;
}

/** The index of the quote that closes the string whose content starts at `from`, or -1. */
function stringEnd(text: string, from: number): number {
  for (let q = text.indexOf('"', from); q !== -1; q = text.indexOf('"', q + 1)) {
    let backslashes = 0;
    while (q - 1 - backslashes >= from && text.charCodeAt(q - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return q;
  }
  return -1;
}

/** The deepest nesting of objects/arrays in a parsed value, walked with an explicit stack. */
export function valueDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max && (max = d + 1) > limit) return max;
    for (const child of Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return max;
}

/** `JSON.parse` behind the depth check; throws JsonTooDeepError (or SyntaxError) instead of parsing. */
export function parseJsonWithin(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonTextDepth(text, maxDepth) > maxDepth) throw new JsonTooDeepError(maxDepth);
  return JSON.parse(text);
}
