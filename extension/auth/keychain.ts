import type * as z from 'zod/mini';
import type { Event } from '../events.ts';
import type { Logger } from '../log.ts';

// The one place secrets are read from and written to (after VS Code's
// github-authentication keychain). Values are JSON, validated with zod when
// read back; a value that no longer parses is treated as absent and removed.
// Keys are namespaced so other secrets of the extension cannot collide.

/** VS Code's SecretStorage, reduced to what the keychain uses (it satisfies this as is). */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
  readonly onDidChange: Event<{ readonly key: string }>;
}

const PREFIX = 'keygate:';

export class Keychain {
  constructor(
    private readonly secrets: SecretStore,
    private readonly log: Logger,
  ) {}

  async get<S extends z.ZodMiniType>(key: string, schema: S): Promise<z.infer<S> | undefined> {
    let raw: string | undefined;
    try {
      raw = await this.secrets.get(PREFIX + key);
    } catch (err) {
      // Linux without a keyring, a locked keychain: signed out rather than broken.
      this.log.error(`could not read ${key} from the secret storage`, err);
      return undefined;
    }
    if (raw === undefined) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      this.log.warn(`discarding ${key} from the secret storage: it is not in the expected form`);
      await this.delete(key);
      return undefined;
    }
    return parsed.data;
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.secrets.store(PREFIX + key, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    try {
      await this.secrets.delete(PREFIX + key);
    } catch (err) {
      this.log.error(`could not delete ${key} from the secret storage`, err);
    }
  }

  /** Changes to our keys that start with `prefix` (from this window or another one sharing the storage), each named by what follows the prefix. */
  under(prefix: string): Event<string> {
    const full = PREFIX + prefix;
    return (listener) =>
      this.secrets.onDidChange((e) => {
        if (e.key.startsWith(full)) listener(e.key.slice(full.length));
      });
  }
}
