import type { z } from 'zod';
import type { AuditLog } from '../audit/audit.ts';
import type { Logger } from '../log.ts';
import type { IndexOf, Kind, WholeKind } from './kinds.ts';

// The one small store interface (after node-oidc-provider's adapter):
// records of a kind keyed by id; find, upsert, an atomic read-modify-write
// update, consume-once, destroy; listing and deleting by a named index
// declared per kind in kinds.ts (never by a JavaScript predicate, which a
// database cannot run); expiry as a property of each record. Only this
// folder imports a storage library.

export type { IndexOf, Kind, WholeKind } from './kinds.ts';

export interface Store {
  /** The record, or undefined when absent or expired. */
  find(kind: Kind, id: string): Promise<unknown>;
  /** Create or replace. `expiresAt` is epoch seconds. */
  upsert(kind: Kind, id: string, payload: unknown, expiresAt?: number): Promise<void>;
  /**
   * Atomic read-modify-write of one record: `fn` sees the current payload
   * (undefined when absent or expired) and returns the new one, or undefined
   * to delete it. No other write to the record interleaves. `expiresAt`
   * omitted keeps the record's expiry; null makes it never expire.
   */
  update(kind: Kind, id: string, fn: (current: unknown) => unknown, expiresAt?: number | null): Promise<unknown>;
  /** Return the record and delete it, once: a second consume gets undefined. */
  consume(kind: Kind, id: string): Promise<unknown>;
  destroy(kind: Kind, id: string): Promise<void>;
  /** Every live record of a kind whose index (kinds.ts) holds `value`, with its id. */
  findBy(kind: Kind, index: string, value: string): Promise<[string, unknown][]>;
  /** How many live records of a kind hold `value` in their index (a count the database does: nothing is read back). */
  countBy(kind: Kind, index: string, value: string): Promise<number>;
  /** Delete every live record of a kind whose index holds `value`; returns how many. */
  destroyBy(kind: Kind, index: string, value: string): Promise<number>;
  /** Every live record of a kind listed whole by design (kinds.ts `whole`), with its id. */
  all(kind: WholeKind): Promise<[string, unknown][]>;
  /** True when the backing store can be read (for /healthz), false when it cannot or does not answer within a few seconds. */
  healthy(): Promise<boolean>;
  /** A store shared by several instances keeps their one audit log (absent: each process keeps its own, in files). */
  auditLog?(options: { log: Logger; retentionDays?: number | undefined }): AuditLog;
  /**
   * Call `listener` with the id of every record of `kind` that changes
   * (written, consumed, destroyed): for a change made through this store,
   * before the change's promise resolves, so caches built from the store
   * drop the entry and the next read sees the change; for a change made by
   * another instance on a shared database, soon after it commits
   * (docs/deployment.md gives the bound). Returns a function that removes
   * the listener.
   */
  onChange(kind: Kind, listener: (id: string) => void): () => void;
  /**
   * Call `listener` when changes may have been missed: on a shared database,
   * once the connection that hears other instances' changes was lost and is
   * open again (what changed in between was not announced here). Every cache
   * that relies on onChange reloads what it holds from the store. A store of
   * one process hears every change: memory never calls it, lowdb only when a
   * write to its file failed and the changes since the last one were undone.
   * Returns a function that removes the listener.
   */
  onReset(listener: () => void): () => void;
  /**
   * Run `fn` holding the lock `name`: no other holder of that name runs at
   * the same time, in this process or (on a shared database) in any other
   * instance. Released when `fn` settles, resolved or thrown. For work done
   * once for all instances (an upstream OAuth refresh): take the lock, then
   * read again what another holder may have written meanwhile.
   */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The backing store cannot be used; start-up stops and nothing is overwritten. */
export class StoreError extends Error {
  readonly code: 'ERR_STORE_CORRUPT' | 'ERR_STORE_UNREADABLE' | 'ERR_STORE_LOCKED';
  constructor(code: StoreError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** A write the backing store could not make durable (a full disk): it was not made; the caller may try again later (503). */
export class StoreUnavailableError extends Error {
  readonly code = 'ERR_STORE_UNAVAILABLE';
  override readonly name = 'StoreUnavailableError';
}

/** A record read back that no longer fits its schema is treated as corrupt, not trusted. */
export class RecordError extends Error {
  readonly code = 'ERR_STORE_RECORD';
}

/** A typed view of one kind: records are validated with zod when read back. */
export class Collection<S extends z.ZodType, K extends Kind = Kind> {
  constructor(
    private readonly store: Store,
    readonly kind: K,
    private readonly schema: S,
  ) {}

  private parse(value: unknown): z.infer<S> | undefined {
    if (value === undefined) return undefined;
    const result = this.schema.safeParse(value);
    if (!result.success) throw new RecordError(`a ${this.kind} record does not match its schema: ${result.error.issues[0]?.message ?? ''}`);
    return result.data;
  }

  private parseEntries(entries: [string, unknown][]): [string, z.infer<S>][] {
    return entries.map(([id, v]) => [id, this.parse(v) as z.infer<S>]);
  }

  async find(id: string): Promise<z.infer<S> | undefined> {
    return this.parse(await this.store.find(this.kind, id));
  }
  upsert(id: string, payload: z.infer<S>, expiresAt?: number): Promise<void> {
    return this.store.upsert(this.kind, id, payload, expiresAt);
  }
  async update(id: string, fn: (current: z.infer<S> | undefined) => z.infer<S> | undefined, expiresAt?: number | null): Promise<z.infer<S> | undefined> {
    return this.parse(await this.store.update(this.kind, id, (current) => fn(this.parse(current)), expiresAt));
  }
  async consume(id: string): Promise<z.infer<S> | undefined> {
    return this.parse(await this.store.consume(this.kind, id));
  }
  destroy(id: string): Promise<void> {
    return this.store.destroy(this.kind, id);
  }
  /** The records whose index holds `value`, with their ids. */
  async findBy(index: IndexOf<K>, value: string): Promise<[string, z.infer<S>][]> {
    return this.parseEntries(await this.store.findBy(this.kind, index, value));
  }
  countBy(index: IndexOf<K>, value: string): Promise<number> {
    return this.store.countBy(this.kind, index, value);
  }
  destroyBy(index: IndexOf<K>, value: string): Promise<number> {
    return this.store.destroyBy(this.kind, index, value);
  }
  /** Every record of a kind listed whole by design, with its id. */
  async all(this: Collection<S, K & WholeKind>): Promise<[string, z.infer<S>][]> {
    return this.parseEntries(await this.store.all(this.kind));
  }
  onChange(listener: (id: string) => void): () => void {
    return this.store.onChange(this.kind, listener);
  }
  /** Store.onReset: changes may have been missed; reload. */
  onReset(listener: () => void): () => void {
    return this.store.onReset(listener);
  }
}
