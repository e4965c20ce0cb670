import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { assertWhole, indexField, isKind, type Kind, type WholeKind } from '../kinds.ts';
import type { StoredRecord } from '../memory-store.ts';
import { StoreError, StoreUnavailableError, type Store } from '../store.ts';
import { PostgresAudit, type PostgresAuditOptions } from './postgres-audit.ts';
import { fieldExpression, migrate } from './schema.ts';

const now = () => Math.floor(Date.now() / 1000);
/** How long /healthz waits for the database before it answers 503. */
const HEALTH_TIMEOUT_MS = 2000;
/** A database that does not answer: a new connection gives up after this long, a query (not a lock wait) after QUERY_TIMEOUT_MS. */
const CONNECT_TIMEOUT_MS = 5000;
const QUERY_TIMEOUT_MS = 10_000;

/**
 * A database that cannot be used (down, restarting, refusing connections,
 * silent past the timeouts: SQLSTATE classes 08, 53 and 57, the socket's
 * errors, the driver's connection and timeout errors) is a
 * StoreUnavailableError, which the endpoints answer with 503; any other error
 * (a bug, or the caller's own) is thrown as it is. The message names the
 * condition, never the URL.
 */
function unavailable(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const down =
    err instanceof pg.DatabaseError
      ? /^(08|53|57)/.test(err.code ?? '')
      : (typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN|NOTFOUND)$/.test(code)) ||
        /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection ended/i.test(err.message);
  return down ? new StoreUnavailableError(`the database cannot be used (${typeof code === 'string' ? code : err.message})`, { cause: err }) : err;
}
const LIVE = '(expires_at IS NULL OR expires_at > $3)';
/** At most this many withLock holders at once per instance (more wait for a connection). */
const LOCK_CONNECTIONS = 4;
/** Where every instance announces its changes (LISTEN/NOTIFY). */
export const CHANGES_CHANNEL = 'keygate_changes';

/** The first wait before the LISTEN connection is opened again; each failed attempt doubles it, up to the second figure. */
const LISTEN_RETRY_MS = 250;
const LISTEN_RETRY_MAX_MS = 5000;

/** Create or replace one record, its expiry as given. */
const UPSERT = `INSERT INTO keygate_records (kind, id, payload, expires_at) VALUES ($1, $2, $3::jsonb, $4)
  ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at`;

interface Change {
  /** The instance that made the change (its own listeners heard it already). */
  o: string;
  k: string;
  i: string;
}

export interface PostgresOptions {
  url: string;
  poolSize?: number;
  sweepIntervalMs?: number;
  /** Told when the LISTEN connection drops, and of each failed attempt to open it again (the reset listeners reload once it is back). */
  onListenError?: (err: Error) => void;
}

/**
 * The store on PostgreSQL, for one or more registry instances on one
 * database (schema.ts). Each verb is one statement, except update: a
 * transaction that locks the record (an advisory lock on kind and id, which
 * also holds for a record not yet written, then SELECT … FOR UPDATE), so
 * concurrent updates from any instance run one after the other. consume is
 * DELETE … RETURNING: of two at the same time, one gets the row. Every write
 * calls this instance's listeners before it resolves and NOTIFYs the others,
 * which hear it on their LISTEN connection once it commits.
 */
export class PostgresStore implements Store {
  private readonly listeners = new Map<Kind, Set<(id: string) => void>>();
  private readonly resetListeners = new Set<() => void>();
  private readonly origin = randomUUID();
  private listenClient: pg.Client | undefined;
  /**
   * Connections that hold withLock's locks, apart from the pool: the work done
   * under a lock reads and writes through the pool, so holders never wait for
   * a connection another holder keeps.
   */
  private readonly lockPool: pg.Pool;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresOptions,
  ) {
    this.lockPool = new pg.Pool({ connectionString: options.url, max: LOCK_CONNECTIONS, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    this.lockPool.on('error', () => undefined);
  }

  /** Connect, apply missing migrations, start listening for other instances' changes. */
  static async open(options: PostgresOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
    // An idle connection the server closes must not end the process; the next query opens another.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, options);
    try {
      await migrate(pool);
      await store.listen();
    } catch (err) {
      await store.close();
      throw new StoreError('ERR_STORE_UNREADABLE', `cannot open the PostgreSQL store: ${describeFailure(err, options.url)}`);
    }
    store.sweeper = setInterval(() => void store.sweep().catch(() => undefined), options.sweepIntervalMs ?? 60_000);
    store.sweeper.unref();
    return store;
  }

  /**
   * LISTEN on a connection of its own. When it is lost (the backend
   * terminated, PostgreSQL restarted, the network), it is opened again, after
   * LISTEN_RETRY_MS and then longer waits, for as long as it takes; once it
   * listens again, the reset listeners reload their caches (what other
   * instances changed in between was announced to nobody here).
   */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, application_name: `keygate-registry listen (pid ${process.pid})` });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGES_CHANNEL || !msg.payload) return;
      let change: Change;
      try {
        change = JSON.parse(msg.payload) as Change;
      } catch {
        return;
      }
      if (change.o !== this.origin && isKind(change.k)) this.changed(change.k, change.i);
    });
    let lost = false;
    const onLost = (err: Error) => {
      if (lost || this.closed) return;
      lost = true;
      this.listenClient = undefined;
      this.options.onListenError?.(err);
      void client.end().catch(() => undefined);
      this.relisten(0);
    };
    client.on('error', onLost);
    client.on('end', () => onLost(new Error('the LISTEN connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      lost = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) await client.end().catch(() => undefined);
    else this.listenClient = client;
  }

  private relisten(attempt: number): void {
    const wait = Math.min(LISTEN_RETRY_MS * 2 ** attempt, LISTEN_RETRY_MAX_MS);
    setTimeout(() => {
      if (this.closed) return;
      this.listen().then(
        () => {
          for (const listener of this.resetListeners) listener();
        },
        (err: Error) => {
          this.options.onListenError?.(err);
          this.relisten(attempt + 1);
        },
      );
    }, wait).unref();
  }

  onReset(listener: () => void): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  onChange(kind: Kind, listener: (id: string) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private changed(kind: Kind, id: string): void {
    for (const listener of this.listeners.get(kind) ?? []) listener(id);
  }

  private note(kind: Kind, id: string): string {
    return JSON.stringify({ o: this.origin, k: kind, i: id } satisfies Change);
  }

  async find(kind: Kind, id: string): Promise<unknown> {
    const { rows } = await this.query(`SELECT payload FROM keygate_records WHERE kind = $1 AND id = $2 AND ${LIVE}`, [kind, id, now()]);
    return rows[0]?.payload;
  }

  async upsert(kind: Kind, id: string, payload: unknown, expiresAt?: number): Promise<void> {
    await this.query(
      `WITH w AS (
         INSERT INTO keygate_records (kind, id, payload, expires_at) VALUES ($1, $2, $3::jsonb, $4)
         ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at
         RETURNING id)
       SELECT pg_notify('${CHANGES_CHANNEL}', $5) FROM w`,
      [kind, id, JSON.stringify(payload), expiresAt ?? null, this.note(kind, id)],
    );
    this.changed(kind, id);
  }

  async update(kind: Kind, id: string, fn: (current: unknown) => unknown, expiresAt?: number | null): Promise<unknown> {
    const next = await this.transaction(async (client) => {
      // The advisory lock holds a record that does not exist yet; FOR UPDATE keeps writers that do not take it (upsert, destroy) out.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`${kind}\n${id}`]);
      const { rows } = await client.query<{ payload: unknown; expires_at: string | null }>('SELECT payload, expires_at FROM keygate_records WHERE kind = $1 AND id = $2 FOR UPDATE', [kind, id]);
      const row = rows[0];
      const current = row && (row.expires_at === null || Number(row.expires_at) > now()) ? row.payload : undefined;
      const next = fn(current);
      if (next === undefined) {
        await client.query('DELETE FROM keygate_records WHERE kind = $1 AND id = $2', [kind, id]);
      } else {
        const keep = expiresAt === null ? null : (expiresAt ?? (row?.expires_at != null ? Number(row.expires_at) : null));
        await client.query(UPSERT, [kind, id, JSON.stringify(next), keep]);
      }
      await client.query(`SELECT pg_notify('${CHANGES_CHANNEL}', $1)`, [this.note(kind, id)]);
      return next;
    });
    this.changed(kind, id);
    return next === undefined ? undefined : structuredClone(next);
  }

  /**
   * A transaction-scoped advisory lock, held while `fn` runs and released by
   * ending the transaction (or, should the connection drop, by PostgreSQL).
   * Its key space ("lock" + name) is apart from update's (kind + id).
   */
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const client = await this.lockPool.connect().catch((err: unknown) => {
      throw unavailable(err);
    });
    let broken = false;
    try {
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`lock\n${name}`]);
      } catch (err) {
        throw unavailable(err);
      }
      return await fn();
    } finally {
      await client.query('ROLLBACK').catch(() => (broken = true));
      client.release(broken);
    }
  }

  /** One statement on a pooled connection; a database that cannot be used is StoreUnavailableError. */
  private query<R extends pg.QueryResultRow = any>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  /** `work` in one transaction on one pooled connection: committed when it resolves, rolled back when it throws. */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => {
      throw unavailable(err);
    });
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw unavailable(err);
    } finally {
      client.release(broken);
    }
  }

  async consume(kind: Kind, id: string): Promise<unknown> {
    const { rows } = await this.query(
      `WITH d AS (DELETE FROM keygate_records WHERE kind = $1 AND id = $2 AND ${LIVE} RETURNING payload)
       SELECT payload, pg_notify('${CHANGES_CHANNEL}', $4) FROM d`,
      [kind, id, now(), this.note(kind, id)],
    );
    if (rows.length === 0) return undefined;
    this.changed(kind, id);
    return rows[0].payload;
  }

  async destroy(kind: Kind, id: string): Promise<void> {
    const { rowCount } = await this.query(
      `WITH d AS (DELETE FROM keygate_records WHERE kind = $1 AND id = $2 RETURNING id)
       SELECT pg_notify('${CHANGES_CHANNEL}', $3) FROM d`,
      [kind, id, this.note(kind, id)],
    );
    if (rowCount) this.changed(kind, id);
  }

  async findBy(kind: Kind, index: string, value: string): Promise<[string, unknown][]> {
    const field = fieldExpression(indexField(kind, index));
    const { rows } = await this.query<{ id: string; payload: unknown }>(`SELECT id, payload FROM keygate_records WHERE kind = $1 AND ${field} = $2 AND ${LIVE} ORDER BY seq`, [kind, value, now()]);
    return rows.map((r) => [r.id, r.payload]);
  }

  async countBy(kind: Kind, index: string, value: string): Promise<number> {
    const field = fieldExpression(indexField(kind, index));
    const { rows } = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM keygate_records WHERE kind = $1 AND ${field} = $2 AND ${LIVE}`, [kind, value, now()]);
    return rows[0]?.n ?? 0;
  }

  async destroyBy(kind: Kind, index: string, value: string): Promise<number> {
    const field = fieldExpression(indexField(kind, index));
    const { rows } = await this.query<{ id: string }>(
      `WITH d AS (DELETE FROM keygate_records WHERE kind = $1 AND ${field} = $2 AND ${LIVE} RETURNING id)
       SELECT id, pg_notify('${CHANGES_CHANNEL}', json_build_object('o', $4::text, 'k', $1::text, 'i', id)::text) FROM d`,
      [kind, value, now(), this.origin],
    );
    for (const { id } of rows) this.changed(kind, id);
    return rows.length;
  }

  async all(kind: WholeKind): Promise<[string, unknown][]> {
    assertWhole(kind);
    const { rows } = await this.query<{ id: string; payload: unknown }>(`SELECT id, payload FROM keygate_records WHERE kind = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY seq`, [kind, now()]);
    return rows.map((r) => [r.id, r.payload]);
  }

  /** Delete expired records (they are already absent to every verb). */
  async sweep(): Promise<number> {
    const { rows } = await this.query<{ kind: string; id: string }>('DELETE FROM keygate_records WHERE expires_at <= $1 RETURNING kind, id', [now()]);
    for (const { kind, id } of rows) if (isKind(kind)) this.changed(kind, id);
    return rows.length;
  }

  /** Write records as they are, expiry included, in one transaction (`keygate-registry migrate --from lowdb`). */
  async load(records: Iterable<{ kind: string; id: string; record: StoredRecord }>): Promise<void> {
    await this.transaction(async (client) => {
      for (const { kind, id, record } of records) await client.query(UPSERT, [kind, id, JSON.stringify(record.payload), record.expires_at ?? null]);
    });
  }

  /** The audit log of every instance, in this database (postgres-audit.ts). */
  auditLog(options: Omit<PostgresAuditOptions, 'url'>): PostgresAudit {
    return new PostgresAudit(this.pool, { ...options, url: this.options.url });
  }

  /**
   * The database answers a query within HEALTH_TIMEOUT_MS, and this instance
   * hears the others (its LISTEN connection is open). Without the timeout, a
   * database that stops answering (or a pool with every connection waiting on
   * it) would hold /healthz for as long as it hangs.
   */
  async healthy(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS)));
    const check = this.pool.query('SELECT 1').then(
      () => this.listenClient !== undefined,
      () => false,
    );
    try {
      return await Promise.race([check, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    await this.listenClient?.end().catch(() => undefined);
    await Promise.all([this.pool.end(), this.lockPool.end()]).catch(() => undefined);
  }
}

/** What went wrong, without the connection URL or its password (the cause is not kept: it may hold them). */
export function describeFailure(err: unknown, url: string): string {
  const e = err as { code?: string; message?: string };
  let text = [e.code, e.message].filter(Boolean).join(': ') || 'unknown error';
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    // not a URL: hidden whole below
  }
  for (const secret of [url, password]) if (secret) text = text.split(secret).join('[redacted]');
  return text;
}
