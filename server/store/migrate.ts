import { resolve } from 'node:path';
import pg from 'pg';
import type { Config } from '../config/schema.ts';
import { databaseUrl } from './index.ts';
import { LowdbStore } from './lowdb/lowdb-store.ts';
import { describeFailure, PostgresStore } from './postgres/postgres-store.ts';
import { migrate } from './postgres/schema.ts';
import { StoreError } from './store.ts';

// `keygate-registry migrate`: apply the PostgreSQL schema's missing
// migrations, and (--from lowdb) copy an embedded store into PostgreSQL.

function requirePostgres(config: Config['storage']): void {
  if (config.type !== 'postgres') throw new StoreError('ERR_STORE_UNREADABLE', 'migrate works on a PostgreSQL store: set storage.type: postgres (and storage.url_env) in the configuration');
}

/** Apply the schema's missing migrations; returns what was applied. */
export async function migrateSchema(config: Config['storage'], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  requirePostgres(config);
  const url = databaseUrl(config, env);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => undefined);
  try {
    return await migrate(pool);
  } catch (err) {
    throw new StoreError('ERR_STORE_UNREADABLE', `cannot migrate the PostgreSQL store: ${describeFailure(err, url)}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/**
 * Copy every record of the lowdb store in `dataDir` (its file: {dataDir}/store.json,
 * or `file`) into PostgreSQL, expiry kept, in one transaction; records the
 * database already holds under the same kind and id are replaced. The lowdb
 * store is locked while it is read: a registry still running on it refuses.
 * Returns the count per kind.
 */
export async function copyFromLowdb(config: Config['storage'], dataDir: string, env: NodeJS.ProcessEnv = process.env, file?: string): Promise<Record<string, number>> {
  requirePostgres(config);
  const source = await LowdbStore.open(resolve(dataDir, file ?? 'store.json'));
  try {
    const records = source.dump();
    const target = await PostgresStore.open({ url: databaseUrl(config, env), poolSize: 1 });
    try {
      await target.load(records);
    } finally {
      await target.close();
    }
    const counts: Record<string, number> = {};
    for (const { kind } of records) counts[kind] = (counts[kind] ?? 0) + 1;
    return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
  } finally {
    await source.close();
  }
}
