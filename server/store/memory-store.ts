import { assertWhole, indexField, type Kind, type WholeKind } from './kinds.ts';
import type { Store } from './store.ts';

const now = () => Math.floor(Date.now() / 1000);

export interface StoredRecord {
  payload: unknown;
  /** Epoch seconds; absent: never expires. */
  expires_at?: number;
}
export type Collections = Record<string, Record<string, StoredRecord>>;

/**
 * Records in this process's memory. Every change is applied synchronously
 * (a read-modify-write cannot interleave with another), then `persist()` is
 * awaited: nothing for the memory store (tests, one process that keeps
 * nothing), the file write for lowdb, which extends it. An index is read by
 * looking at the declared field of each record: the whole kind is in memory.
 */
export class MemoryStore implements Store {
  private readonly listeners = new Map<Kind, Set<(id: string) => void>>();
  /** The last holder in line for each lock name (withLock): one process, so a queue of promises is the lock. */
  private readonly locks = new Map<string, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  /** The records, read through a function: lowdb hands over the data it (re)reads from its file. */
  protected readonly collections: () => Collections;

  constructor(collections?: () => Collections, options: { sweepIntervalMs?: number } = {}) {
    const own: Collections = {};
    this.collections = collections ?? (() => own);
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  protected async persist(): Promise<void> {}

  onChange(kind: Kind, listener: (id: string) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** One process hears every change of its own: nothing is ever missed. */
  onReset(_listener: () => void): () => void {
    return () => undefined;
  }

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const last = before.then(() => held);
    this.locks.set(name, last);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(name) === last) this.locks.delete(name);
    }
  }

  protected changed(kind: Kind, id: string): void {
    for (const listener of this.listeners.get(kind) ?? []) listener(id);
  }

  private records(kind: Kind): Record<string, StoredRecord> {
    return (this.collections()[kind] ??= {});
  }

  private live(kind: Kind, id: string): unknown {
    const record = Object.hasOwn(this.records(kind), id) ? this.records(kind)[id] : undefined;
    if (!record) return undefined;
    if (record.expires_at !== undefined && record.expires_at <= now()) return undefined;
    return record.payload;
  }

  private liveEntries(kind: Kind): [string, unknown][] {
    return Object.keys(this.records(kind))
      .map((id) => [id, this.live(kind, id)] as [string, unknown])
      .filter(([, p]) => p !== undefined);
  }

  private indexed(kind: Kind, index: string, value: string): [string, unknown][] {
    const field = indexField(kind, index);
    return this.liveEntries(kind).filter(([, p]) => (p as Record<string, unknown> | null)?.[field] === value);
  }

  async find(kind: Kind, id: string): Promise<unknown> {
    return structuredClone(this.live(kind, id));
  }

  async upsert(kind: Kind, id: string, payload: unknown, expiresAt?: number): Promise<void> {
    this.records(kind)[id] = { payload: structuredClone(payload), ...(expiresAt !== undefined && { expires_at: expiresAt }) };
    this.changed(kind, id);
    await this.persist();
  }

  async update(kind: Kind, id: string, fn: (current: unknown) => unknown, expiresAt?: number | null): Promise<unknown> {
    const records = this.records(kind);
    const next = fn(structuredClone(this.live(kind, id)));
    if (next === undefined) {
      delete records[id];
    } else {
      const keep = expiresAt === null ? undefined : (expiresAt ?? records[id]?.expires_at);
      records[id] = { payload: structuredClone(next), ...(keep !== undefined && { expires_at: keep }) };
    }
    this.changed(kind, id);
    await this.persist();
    return structuredClone(next);
  }

  async consume(kind: Kind, id: string): Promise<unknown> {
    const payload = this.live(kind, id);
    if (payload === undefined) return undefined;
    delete this.records(kind)[id];
    this.changed(kind, id);
    await this.persist();
    return payload;
  }

  async destroy(kind: Kind, id: string): Promise<void> {
    const records = this.records(kind);
    if (!Object.hasOwn(records, id)) return;
    delete records[id];
    this.changed(kind, id);
    await this.persist();
  }

  async findBy(kind: Kind, index: string, value: string): Promise<[string, unknown][]> {
    return structuredClone(this.indexed(kind, index, value));
  }

  async countBy(kind: Kind, index: string, value: string): Promise<number> {
    return this.indexed(kind, index, value).length;
  }

  async destroyBy(kind: Kind, index: string, value: string): Promise<number> {
    const matches = this.indexed(kind, index, value);
    for (const [id] of matches) {
      delete this.records(kind)[id];
      this.changed(kind, id);
    }
    if (matches.length) await this.persist();
    return matches.length;
  }

  async all(kind: WholeKind): Promise<[string, unknown][]> {
    assertWhole(kind);
    return structuredClone(this.liveEntries(kind));
  }

  /** Drop expired records so memory (and lowdb's file) does not grow without bound. */
  async sweep(): Promise<number> {
    const t = now();
    let removed = 0;
    for (const [kind, records] of Object.entries(this.collections())) {
      for (const [id, record] of Object.entries(records)) {
        if (record.expires_at !== undefined && record.expires_at <= t) {
          delete records[id];
          this.changed(kind as Kind, id);
          removed++;
        }
      }
    }
    if (removed) await this.persist();
    return removed;
  }

  /** Every record as stored, expiry included (for `keygate-registry migrate --from lowdb`). */
  dump(): { kind: string; id: string; record: StoredRecord }[] {
    return Object.entries(this.collections()).flatMap(([kind, records]) => Object.entries(records).map(([id, record]) => ({ kind, id, record: structuredClone(record) })));
  }

  async healthy(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
