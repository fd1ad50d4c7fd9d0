/** Whether `--store` names a PostgreSQL database (`postgres://…` or `postgresql://…`). */
export const isPostgresUrl = (url: string | undefined): url is string => !!url && /^postgres(ql)?:\/\//i.test(url);

/** A store URL fit for logs and errors: its password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}
