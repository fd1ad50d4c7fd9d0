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

/** The deepest nesting of objects/arrays in JSON text (strings skipped); stops scanning once past `limit`. */
export function jsonTextDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92) i++; // backslash: skip the escaped character
      else if (ch === 34) inString = false;
      continue;
    }
    if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return max;
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
