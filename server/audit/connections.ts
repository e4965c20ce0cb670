import { z } from 'zod';
import { connectionKey } from '../catalog/access.ts';
import type { Logger } from '../log.ts';
import { Collection, type Store } from '../store/index.ts';
import type { AuditEntry } from './audit.ts';

// Connections (one user's use of one gateway from one client) are learnt from
// the audit stream, after the fact: `observe` only touches memory; a timer
// upserts what changed in batches. A connection's last_seen is stored at most
// once per PRECISION_SECONDS, so a busy connection costs no store write per
// call; this process's own (exact) last_seen is overlaid when listing.

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

export interface ConnectionLogOptions {
  /** Only calls that reached an existing gateway make a connection. */
  knownGateway: (id: string) => boolean;
  log: Logger;
  flushIntervalMs?: number;
  precisionSeconds?: number;
}

export class ConnectionLog {
  readonly records: Collection<typeof connectionSchema, 'connections'>;
  /** What this process saw last, per connection key. */
  private readonly latest = new Map<string, ConnectionRecord>();
  /** last_seen as last written to the store. */
  private readonly stored = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly interval: number;
  private readonly precision: number;

  constructor(
    store: Store,
    private readonly options: ConnectionLogOptions,
  ) {
    this.records = new Collection(store, 'connections', connectionSchema);
    this.interval = options.flushIntervalMs ?? FLUSH_INTERVAL_MS;
    this.precision = options.precisionSeconds ?? PRECISION_SECONDS;
  }

  async load(): Promise<void> {
    for (const [key, record] of await this.records.all()) this.stored.set(key, record.last_seen);
  }

  /** An audit entry went by (called on the request path: memory only). */
  observe(entry: AuditEntry): void {
    if (entry.subject === undefined || !this.options.knownGateway(entry.gateway)) return;
    const key = connectionKey(entry.subject, entry.gateway, entry.client_id);
    const at = Math.floor(Date.now() / 1000); // (the entry was made just now: its time need not be parsed back)
    const seen = this.latest.get(key);
    if (seen) {
      if (at > seen.last_seen) seen.last_seen = at;
    } else {
      this.latest.set(key, { sub: entry.subject, provider: entry.provider, gateway: entry.gateway, client_id: entry.client_id, first_seen: at, last_seen: at });
    }
    const storedAt = this.stored.get(key);
    if (storedAt === undefined || at - storedAt >= this.precision) {
      this.dirty.add(key);
      if (!this.timer) {
        this.timer = setTimeout(() => void this.flush(), this.interval);
        this.timer.unref();
      }
    }
  }

  /** Write what changed; resolves once it is in the store. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const keys = [...this.dirty];
    this.dirty.clear();
    if (keys.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
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
          this.options.log.warn('connection %s: last_seen not saved: %s', JSON.stringify(key), (err as Error).message);
        }
      }
    });
    return this.flushing;
  }

  /** Every connection, with this process's latest last_seen. */
  async list(): Promise<[string, ConnectionRecord][]> {
    await this.flush();
    return (await this.records.all()).map(([key, record]) => {
      const seen = this.latest.get(key);
      return [key, seen && seen.last_seen > record.last_seen ? { ...record, last_seen: seen.last_seen } : record];
    });
  }

  async find(key: string): Promise<ConnectionRecord | undefined> {
    await this.flush();
    const record = await this.records.find(key);
    const seen = this.latest.get(key);
    return record && seen && seen.last_seen > record.last_seen ? { ...record, last_seen: seen.last_seen } : record;
  }

  close(): Promise<void> {
    return this.flush();
  }
}
