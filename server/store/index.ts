import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_DATABASE_URL_ENV } from '../config/sections/storage.ts';
import { LowdbStore } from './lowdb/lowdb-store.ts';
import { StoreError, type Store } from './store.ts';

export { Collection, RecordError, StoreError, StoreUnavailableError, type IndexOf, type Kind, type Store, type WholeKind } from './store.ts';

/** Open the store the configuration names. The PostgreSQL URL comes only from the environment. */
export async function openStore(config: Config['storage'], dataDir: string, env: NodeJS.ProcessEnv = process.env, log?: Logger): Promise<Store> {
  switch (config.type) {
    case 'lowdb':
      return LowdbStore.open(resolve(dataDir, config.path ?? 'store.json'));
    case 'postgres': {
      const url = databaseUrl(config, env);
      // Loaded only here, so the embedded default (lowdb) starts without pg.
      const { PostgresStore } = await import('./postgres/postgres-store.ts');
      return PostgresStore.open({
        url,
        poolSize: config.pool_size,
        onListenError: (err) => log?.warn('PostgreSQL LISTEN connection lost (%s): opening it again, then reloading what this instance holds in memory (changes other instances make meanwhile are not announced to it)', (err as { code?: string }).code ?? err.message),
      });
    }
  }
}

/** The PostgreSQL URL from the variable storage.url_env names. */
export function databaseUrl(config: Config['storage'], env: NodeJS.ProcessEnv = process.env): string {
  const name = config.url_env ?? DEFAULT_DATABASE_URL_ENV;
  const url = env[name];
  if (!url) throw new StoreError('ERR_STORE_UNREADABLE', `storage.type is postgres but the environment variable ${name} (storage.url_env) is not set: set it to the database URL, e.g. postgres://keygate:PASSWORD@db.example:5432/keygate`);
  return url;
}
