import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';

// Which identity serves a person on a per-user server: chosen by them per
// (gateway, server); without a choice, their most recently updated usable
// identity for that upstream.

const selectionSchema = z.object({ identity: z.string(), at: z.number() });

export function selectionKey(sub: string, gateway: string, server: string): string {
  return `${sub}\n${gateway}\n${server}`;
}

export class Selections {
  readonly records: Collection<typeof selectionSchema>;

  constructor(store: Store) {
    this.records = new Collection(store, 'selections', selectionSchema);
  }

  async get(sub: string, gateway: string, server: string): Promise<string | undefined> {
    return (await this.records.find(selectionKey(sub, gateway, server)))?.identity;
  }

  async set(sub: string, gateway: string, server: string, identity: string): Promise<void> {
    await this.records.upsert(selectionKey(sub, gateway, server), { identity, at: Math.floor(Date.now() / 1000) });
  }

  clear(sub: string, gateway: string, server: string): Promise<void> {
    return this.records.destroy(selectionKey(sub, gateway, server));
  }
}
