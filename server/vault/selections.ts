import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import type { Assignment } from '../catalog/catalog.ts';
import type { Identities, Identity } from './identities.ts';

// Which identity serves a person on a per-user server: chosen by them per
// (gateway, server); without a choice, their most recently updated usable
// identity for that upstream. identityFor() is the one rule: the gateway's
// credential step and /api/v1/me/servers both ask it, so what the sidebar
// says is what the next call does.

const selectionSchema = z.object({ identity: z.string(), at: z.number() });

export function selectionKey(sub: string, gateway: string, server: string): string {
  return `${sub}\n${gateway}\n${server}`;
}

/** May this identity serve `sub` on a server of `upstream`? Their own, or a global one: a private identity is its owner's alone. */
export function mayServe(identity: Identity, sub: string, upstream: string): boolean {
  return identity.upstream === upstream && (identity.owner === sub || identity.availability === 'global');
}

/**
 * Whose identity serves `sub` on a per-user server of `upstream`:
 *
 * 1. the identity they selected (`selected`: the record their selection
 *    names), while it may serve them; disabled or not: a disabled one is
 *    refused as identity_disabled, never swapped for another;
 * 2. else their own newest identity for the upstream that is not disabled;
 * 3. else, when an admin disabled every one of their own, the newest of
 *    them, which the gateway refuses as identity_disabled: a person is never
 *    moved to someone else's (global) identity they did not choose;
 * 4. else none: the gateway answers identity_missing, with the connect URL.
 *
 * `own` lists their own identities for the upstream, newest first (asked only when needed).
 */
export async function identityFor(sub: string, upstream: string, selected: Identity | undefined, own: () => Identity[] | Promise<Identity[]>): Promise<Identity | undefined> {
  if (selected && mayServe(selected, sub, upstream)) return selected;
  return ownChoice(await own());
}

/** Rules 2 and 3 of identityFor(): of a person's own identities (newest first), the newest not disabled, else a disabled one (refused as such). */
export function ownChoice(mine: Identity[]): Identity | undefined {
  return mine.find((i) => !i.disabled) ?? mine[0];
}

export class Selections {
  readonly records: Collection<typeof selectionSchema, 'selections'>;

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

  /**
   * End the selections of an identity that stopped being selectable: every
   * one when it is deleted, everyone's but its owner's when it is made
   * private. Removed, so that an identity turned global again serves nobody
   * who has not chosen it again. A selection changed meanwhile to another
   * identity is kept.
   */
  async endOf(identity: string, exceptOwner?: string): Promise<void> {
    for (const [key] of await this.records.findBy('identity', identity)) {
      if (exceptOwner !== undefined && key.split('\n')[0] === exceptOwner) continue;
      await this.records.update(key, (current) => (current?.identity === identity ? undefined : current));
    }
  }
}

/**
 * Just after a person selected `identity` for assignment `a`: does it still
 * serve them? Its owner, making it private (or deleting it) at this very
 * moment, ends the selections of it after their own write (Identities), and
 * may have looked before this selection was written; then this read sees
 * their write, and the selection ends here instead (false: refuse the choice).
 */
export async function selectionHolds(deps: { identities: Identities; selections: Selections }, sub: string, a: Assignment, identity: string): Promise<boolean> {
  const now = await deps.identities.records.find(identity);
  if (now && mayServe(now, sub, a.upstream.id)) return true;
  await deps.selections.clear(sub, a.gateway, a.name);
  return false;
}
