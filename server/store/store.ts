import type { z } from 'zod';

// The one small store interface (after node-oidc-provider's adapter):
// collections of records keyed by id, atomic single-record update,
// consume-once, and expiry. Only this folder imports a storage library.

export type Kind =
  | 'clients'
  | 'interactions'
  | 'browser_sessions'
  | 'consents'
  | 'accounts'
  | 'authorization_codes'
  | 'refresh_tokens'
  | 'revoked_access_tokens'
  | 'revocations'
  | 'identities'
  | 'selections'
  | 'upstreams'
  | 'gateways'
  | 'switches'
  | 'connections'
  | 'upstream_clients'
  | 'upstream_authorizations';

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
  /** Every live record of a kind. */
  list(kind: Kind): Promise<unknown[]>;
  /** Every live record of a kind, with its id. */
  entries(kind: Kind): Promise<[string, unknown][]>;
  /** Delete every live record of a kind that matches; returns how many. */
  destroyWhere(kind: Kind, match: (payload: unknown) => boolean): Promise<number>;
  /** True when the backing store can be read (for /healthz). */
  healthy(): Promise<boolean>;
  /**
   * Call `listener` with the id of every record of `kind` that changes
   * (written, consumed, destroyed), before the change's promise resolves:
   * caches built from the store drop the entry and the next read sees the
   * change. Returns a function that removes the listener.
   */
  onChange(kind: Kind, listener: (id: string) => void): () => void;
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

/** A record read back that no longer fits its schema is treated as corrupt, not trusted. */
export class RecordError extends Error {
  readonly code = 'ERR_STORE_RECORD';
}

/** A typed view of one kind: records are validated with zod when read back. */
export class Collection<S extends z.ZodType> {
  constructor(
    private readonly store: Store,
    readonly kind: Kind,
    private readonly schema: S,
  ) {}

  private parse(value: unknown): z.infer<S> | undefined {
    if (value === undefined) return undefined;
    const result = this.schema.safeParse(value);
    if (!result.success) throw new RecordError(`a ${this.kind} record does not match its schema: ${result.error.issues[0]?.message ?? ''}`);
    return result.data;
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
  async list(): Promise<z.infer<S>[]> {
    return (await this.store.list(this.kind)).map((v) => this.parse(v) as z.infer<S>);
  }
  async listWithIds(): Promise<[string, z.infer<S>][]> {
    return (await this.store.entries(this.kind)).map(([id, v]) => [id, this.parse(v) as z.infer<S>]);
  }
  onChange(listener: (id: string) => void): () => void {
    return this.store.onChange(this.kind, listener);
  }
  destroyWhere(match: (payload: z.infer<S>) => boolean): Promise<number> {
    return this.store.destroyWhere(this.kind, (payload) => {
      const parsed = this.schema.safeParse(payload);
      return parsed.success && match(parsed.data);
    });
  }
}
