/** A zod validation problem as the API reports it: `{ path: "cpu.model", message: "…" }`. */
export interface IssueDetail {
  path: string;
  message: string;
}

/**
 * zod issues as `{path, message}` details. An unknown field is reported at its own path, so clients
 * learn which field to drop.
 */
export function issuesToDetails(issues: readonly { code?: string; path: readonly PropertyKey[]; message: string; keys?: readonly string[] }[]): IssueDetail[] {
  return issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys?.length
      ? i.keys.map((k) => ({ path: [...i.path, k].map(String).join('.'), message: 'unknown field' }))
      : [{ path: i.path.map(String).join('.') || '(body)', message: i.message }],
  );
}
