import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { LowdbStore } from './lowdb/lowdb-store.ts';
import type { Store } from './store.ts';

export { Collection, RecordError, StoreError, type IndexOf, type Kind, type Store, type WholeKind } from './store.ts';

/** Open the store the configuration names. */
export async function openStore(config: Config['storage'], dataDir: string): Promise<Store> {
  switch (config.type) {
    case 'lowdb':
      return LowdbStore.open(resolve(dataDir, config.path ?? 'store.json'));
  }
}
