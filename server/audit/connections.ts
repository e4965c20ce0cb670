import { z } from 'zod';
import { connectionKey } from '../catalog/access.ts';
import type { Logger } from '../log.ts';
import { Collection, type Store, type WholeKind } from '../store/index.ts';
import type { AuditEntry } from './audit.ts';

// What the audit stream teaches, after the fact: connections (one user's use
// of one gateway from one client) and when each identity was last used.
// `observe` only touches memory; a timer upserts what changed in batches. A
// last_seen is stored at most once per PRECISION_SECONDS, so a busy
// connection or identity costs no store write per call; this process's own
// (exact) last_seen is overlaid when listing.

const FLUSH_INTERVAL_MS = 2_000;
const PRECISION_SECONDS = 60;

export const connectionSchema = z.object({
  sub: z.string(),
  provider: z.string().optional(),
  gateway: z.string(),
  client_id: z.string().optional(),
  /** Epoch seconds. */
  first_seen: z.number(),
  last_seen: z.number(),
});
export type ConnectionRecord = z.infer<typeof connectionSchema>;

/** An identity's use (by its id): the calls that were to go upstream with its credential. */
export const identityUseSchema = z.object({
  /** Epoch seconds. */
  first_seen: z.number(),
  last_seen: z.number(),
});

export interface ConnectionLogOptions {
  /** Only calls that reached an existing gateway make a connection. */
  knownGateway: (id: string) => boolean;
  log: Logger;
  flushIntervalMs?: number;
  precisionSeconds?: number;
}

interface Seen {
  first_seen: number;
  last_seen: number;
}

/** One kind of record learnt from the audit stream: by key, when first and last seen. */
class LastSeen<S extends z.ZodType<Seen>, K extends WholeKind> {
  private readonly records: Collection<S, K>;
  /** What this process saw last, per key. */
  private readonly latest = new Map<string, z.infer<S>>();
  /** last_seen as last written to the store. */
  private readonly stored = new Map<string, number>();
  private readonly dirty = new Set<string>();

  constructor(
    store: Store,
    kind: K,
    schema: S,
    private readonly what: string,
    private readonly precision: number,
    private readonly log: Logger,
  ) {
    this.records = new Collection(store, kind, schema);
  }

  async load(): Promise<void> {
    for (const [key, record] of await this.records.all()) this.stored.set(key, record.last_seen);
  }

  /** Seen at `at` (epoch seconds); `first` makes its record the first time. True when the store must hear of it. */
  saw(key: string, at: number, first: () => z.infer<S>): boolean {
    const seen = this.latest.get(key);
    if (seen) {
      if (at > seen.last_seen) seen.last_seen = at;
    } else {
      this.latest.set(key, first());
    }
    const storedAt = this.stored.get(key);
    if (storedAt !== undefined && at - storedAt < this.precision) return false;
    this.dirty.add(key);
    return true;
  }

  /** Write what changed. */
  async flush(): Promise<void> {
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      const seen = this.latest.get(key)!;
      try {
        const saved = await this.records.update(key, (current) => ({
          ...seen,
          first_seen: Math.min(current?.first_seen ?? seen.first_seen, seen.first_seen),
          last_seen: Math.max(current?.last_seen ?? 0, seen.last_seen),
        }));
        this.stored.set(key, saved!.last_seen);
      } catch (err) {
        this.log.warn('%s %s: last_seen not saved: %s', this.what, JSON.stringify(key), (err as Error).message);
      }
    }
  }

  /** Drop what is known of `key`, here and in the store. */
  async forget(key: string): Promise<void> {
    this.latest.delete(key);
    this.stored.delete(key);
    this.dirty.delete(key);
    await this.records.destroy(key);
  }

  /** The store's record, with this process's latest last_seen. */
  private overlaid(key: string, record: z.infer<S>): z.infer<S> {
    const seen = this.latest.get(key);
    return seen && seen.last_seen > record.last_seen ? { ...record, last_seen: seen.last_seen } : record;
  }

  async list(): Promise<[string, z.infer<S>][]> {
    return (await this.records.all()).map(([key, record]) => [key, this.overlaid(key, record)]);
  }

  async find(key: string): Promise<z.infer<S> | undefined> {
    const record = await this.records.find(key);
    return record && this.overlaid(key, record);
  }
}

export class ConnectionLog {
  private readonly connections: LastSeen<typeof connectionSchema, 'connections'>;
  private readonly identities: LastSeen<typeof identityUseSchema, 'identity_uses'>;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly interval: number;
  private readonly unwatch: () => void;

  constructor(
    private readonly store: Store,
    private readonly options: ConnectionLogOptions,
  ) {
    this.interval = options.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    const precision = options.precisionSeconds ?? PRECISION_SECONDS;
    this.connections = new LastSeen(store, 'connections', connectionSchema, 'connection', precision, options.log);
    this.identities = new LastSeen(store, 'identity_uses', identityUseSchema, 'identity', precision, options.log);
    // A deleted identity's use goes with it (every instance hears of the deletion), so an identity made again
    // under the same id does not inherit it.
    this.unwatch = store.onChange('identities', (id) => void this.forgetIfDeleted(id));
  }

  private async forgetIfDeleted(id: string): Promise<void> {
    try {
      if ((await this.store.find('identities', id)) === undefined) await this.identities.forget(id);
    } catch (err) {
      this.options.log.warn('identity %s: its last use not forgotten: %s', JSON.stringify(id), (err as Error).message);
    }
  }

  async load(): Promise<void> {
    await Promise.all([this.connections.load(), this.identities.load()]);
  }

  /** An audit entry went by (called on the request path: memory only). */
  observe(entry: AuditEntry): void {
    if (entry.subject === undefined || !this.options.knownGateway(entry.gateway)) return;
    const at = Math.floor(Date.now() / 1000); // (the entry was made just now: its time need not be parsed back)
    const { subject, provider, gateway, client_id } = entry;
    let due = this.connections.saw(connectionKey(subject, gateway, client_id), at, () => ({ sub: subject, provider, gateway, client_id, first_seen: at, last_seen: at }));
    // (An entry names an identity once the call was to go upstream with its credential.)
    if (entry.identity !== undefined) due = this.identities.saw(entry.identity, at, () => ({ first_seen: at, last_seen: at })) || due;
    if (due && !this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.interval);
      this.timer.unref();
    }
  }

  /** Write what changed; resolves once it is in the store. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(() => Promise.all([this.connections.flush(), this.identities.flush()])).then(() => undefined);
    return this.flushing;
  }

  /** Every connection, with this process's latest last_seen. */
  async list(): Promise<[string, ConnectionRecord][]> {
    await this.flush();
    return this.connections.list();
  }

  async find(key: string): Promise<ConnectionRecord | undefined> {
    await this.flush();
    return this.connections.find(key);
  }

  /** When each identity that was ever used was last used (epoch seconds), by identity id; this process's latest included. */
  async identitiesLastUsed(): Promise<Map<string, number>> {
    await this.flush();
    return new Map((await this.identities.list()).map(([id, use]) => [id, use.last_seen]));
  }

  close(): Promise<void> {
    this.unwatch();
    return this.flush();
  }
}
