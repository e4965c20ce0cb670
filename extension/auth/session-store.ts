import * as z from 'zod/mini';
import type { Event } from '../events.ts';
import type { Logger } from '../log.ts';
import type { Keychain } from './keychain.ts';

// Sessions at rest: one per registry, in the keychain under the registry's
// base URL, so a token is only ever read back for the registry that issued it.
// Several windows share the storage; the change event tells each of them when
// another one signed in, refreshed or signed out.

export const storedSessionSchema = z.object({
  /** Stable for the life of the sign-in; refreshes keep it (VS Code sees "changed", not "removed + added"). */
  id: z.string().check(z.minLength(1)),
  registry: z.string(),
  account: z.object({ id: z.string(), label: z.string() }),
  scopes: z.array(z.string()),
  accessToken: z.string().check(z.minLength(1)),
  refreshToken: z.optional(z.string().check(z.minLength(1))),
  /** Epoch milliseconds. */
  expiresAt: z.optional(z.number()),
});
export type StoredSession = z.infer<typeof storedSessionSchema>;

const KEY_PREFIX = 'session:';

export class SessionStore {
  /** The registry whose stored session changed. */
  readonly onDidChange: Event<string>;

  constructor(
    private readonly keychain: Keychain,
    private readonly log: Logger,
  ) {
    this.onDidChange = keychain.under(KEY_PREFIX);
  }

  async get(registry: string): Promise<StoredSession | undefined> {
    const session = await this.keychain.get(KEY_PREFIX + registry, storedSessionSchema);
    if (!session) return undefined;
    if (session.registry !== registry) {
      this.log.warn(`discarding a stored session filed under ${registry} that belongs to ${session.registry}`);
      await this.keychain.delete(KEY_PREFIX + registry);
      return undefined;
    }
    this.log.addSecret(session.accessToken);
    this.log.addSecret(session.refreshToken);
    return session;
  }

  async set(session: StoredSession): Promise<void> {
    await this.keychain.set(KEY_PREFIX + session.registry, storedSessionSchema.parse(session));
  }

  async delete(registry: string): Promise<void> {
    await this.keychain.delete(KEY_PREFIX + registry);
  }
}
