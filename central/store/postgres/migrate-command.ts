import pg from 'pg';
import { isPostgresUrl, redactUrl } from './url.js';
import { migrateDatabase } from './schema.js';

/** `underlay central migrate`: applies the schema migrations to the database at `url` (under the same lock as serve). */
export async function migratePostgres(url: string | undefined): Promise<{ from: number; to: number }> {
  if (!isPostgresUrl(url)) throw new Error(`--store (or UNDERLAY_STORE) must be a postgres:// URL${url ? `, got "${redactUrl(url)}"` : ''}`);
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // surfaced by the query that fails
  await client.connect();
  try {
    return await migrateDatabase(client);
  } finally {
    await client.end();
  }
}
