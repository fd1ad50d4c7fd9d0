/**
 * The exit codes of `underlay`: one table, used by every command (docs/operations.md, "CLI", shows it).
 */
export const EXIT = {
  /** it worked */
  OK: 0,
  /** an error not covered below: the central refused the input (400), an internal error, a bad file */
  ERROR: 1,
  /** a wait ended because its timeout passed (machines wait, services wait, power) */
  TIMEOUT: 2,
  /** not authenticated or not allowed (401, 403) */
  AUTH: 3,
  /** the object does not exist (404) */
  NOT_FOUND: 4,
  /** a conflict (409), or what was waited for failed (a machine in `failed`, a power action refused) */
  CONFLICT: 5,
  /** the central could not be reached or could not serve (connection refused, timeout, 503, 507) */
  UNAVAILABLE: 6,
  /** the command line itself is wrong: unknown command or option, a required flag missing */
  USAGE: 64,
} as const;

export const EXIT_TABLE: [number, string][] = [
  [EXIT.OK, 'success'],
  [EXIT.ERROR, 'error: invalid input refused by the central (400), a bad file, an internal error'],
  [EXIT.TIMEOUT, 'a wait timed out (machines wait, services wait, power --wait)'],
  [EXIT.AUTH, 'not authenticated or not allowed (401, 403)'],
  [EXIT.NOT_FOUND, 'not found (404)'],
  [EXIT.CONFLICT, 'conflict (409), or what was waited for failed'],
  [EXIT.UNAVAILABLE, 'the central is unreachable or unavailable (connection refused, timeout, 503, 507)'],
  [EXIT.USAGE, 'usage error: unknown command or option, missing required flag'],
];

/** The exit code for an HTTP status the central answered. */
export function exitCodeForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.AUTH;
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409) return EXIT.CONFLICT;
  if (status === 408) return EXIT.TIMEOUT;
  if (status === 503 || status === 507 || status === 502 || status === 504) return EXIT.UNAVAILABLE;
  return EXIT.ERROR;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/** The exit code for an error that is not an answer of the central. */
export function exitCodeForError(e: unknown): number {
  const code = (e as { code?: string })?.code;
  return code && NETWORK_CODES.has(code) ? EXIT.UNAVAILABLE : EXIT.ERROR;
}
