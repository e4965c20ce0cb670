import type pg from 'pg';
import type { AuditFilter, AuditLog, AuditReadOptions, AuditRecord } from '../../audit/audit.ts';
import { BatchedWriter } from '../../audit/batched.ts';
import type { Logger } from '../../log.ts';
import { describeFailure } from './postgres-store.ts';

// The audit log in PostgreSQL (storage.type: postgres): every instance appends
// to one table, keygate_audit (schema.ts, migration 2), so an admin asking any
// instance reads the records of all, in time order. As with the JSONL files,
// `record()` only pushes onto an in-memory batch: the MCP request never waits
// on the database. The batch is written as one INSERT every FLUSH_INTERVAL_MS,
// or as soon as it holds MAX_BATCH records, and on close. A record still in
// the batch when the process dies (a crash, SIGKILL) is lost: at most the last
// FLUSH_INTERVAL_MS of records, or, while the database refuses writes, the
// backlog kept for the retry. Each row keeps the record's JSON as written
// (`line`), so the JSONL export is byte for byte what the files hold.

const FLUSH_INTERVAL_MS = 200;
const MAX_BATCH = 500;
/** Rows read per query when exporting (keyset pages: memory stays flat whatever the log's size). */
const PAGE = 1000;
const DAY_MS = 86_400_000;

export interface PostgresAuditOptions {
  log: Logger;
  /** For error messages (never shown: describeFailure hides it). */
  url: string;
  /** Records older than this many days are deleted (at the first write of each day). Unset: kept forever. */
  retentionDays?: number | undefined;
  flushIntervalMs?: number;
}

interface Row {
  seq: string;
  time: Date;
  line: string;
}

/** The columns a record is filtered by, beside its line. */
function columns(entry: AuditRecord): unknown[] {
  const at = Date.parse(entry.time);
  const time = new Date(Number.isNaN(at) ? Date.now() : at).toISOString();
  const admin = entry.kind === 'admin' ? entry : undefined;
  return [time, entry.kind ?? 'mcp', entry.subject ?? null, entry.provider ?? null, entry.actor ?? null, admin ? null : (entry as { gateway: string }).gateway, entry.outcome, admin?.action ?? null, admin?.target.type ?? null, admin?.target.id ?? null, JSON.stringify(entry)];
}

// (`server` and `name` are generated from the line by the database: schema.ts, migration 3.)
const INSERT = `INSERT INTO keygate_audit (time, kind, subject, provider, actor, gateway, outcome, action, target_type, target_id, line)
  SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])`;

/** matchesFilter (audit.ts) as SQL: the same rules, on the indexed columns. */
function where(filter: AuditFilter, params: unknown[]): string[] {
  const clauses: string[] = [];
  const param = (value: unknown) => `$${params.push(value)}`;
  if (filter.kind !== undefined) clauses.push(`kind = ${param(filter.kind)}`);
  if (filter.gateway !== undefined) clauses.push(`gateway = ${param(filter.gateway)}`);
  // (Generated for MCP requests only, as matchesFilter reads them.)
  if (filter.server !== undefined) clauses.push(`server = ${param(filter.server)}`);
  if (filter.tool !== undefined) clauses.push(`name = ${param(filter.tool)}`);
  if (filter.action !== undefined) clauses.push(`action = ${param(filter.action)}`);
  if (filter.target !== undefined) {
    // `gateway` names every gateway; `gateway:eng` one of them (the id may hold colons itself).
    const colon = filter.target.indexOf(':');
    if (colon < 0) clauses.push(`target_type = ${param(filter.target)}`);
    else clauses.push(`target_type = ${param(filter.target.slice(0, colon))}`, `target_id = ${param(filter.target.slice(colon + 1))}`);
  }
  if (filter.subject !== undefined) clauses.push(`subject = ${param(filter.subject)}`);
  if (filter.provider !== undefined) clauses.push(`provider = ${param(filter.provider)}`);
  if (filter.actor !== undefined) clauses.push(`actor = ${param(filter.actor)}`);
  if (filter.outcome !== undefined) clauses.push(filter.outcome === 'error' ? `outcome <> 'ok'` : `outcome = ${param(filter.outcome)}`);
  if (filter.since !== undefined) clauses.push(`time >= ${param(new Date(filter.since).toISOString())}`);
  if (filter.until !== undefined) clauses.push(`time <= ${param(new Date(filter.until).toISOString())}`);
  return clauses;
}

export class PostgresAudit extends BatchedWriter implements AuditLog {
  private prunedDay: string | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresAuditOptions,
  ) {
    super(options.flushIntervalMs ?? FLUSH_INTERVAL_MS, MAX_BATCH);
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.batch.length > 0) this.options.log.error('audit log: %d records could not be written to the database before shutdown and are lost', this.batch.length);
    this.batch = [];
    this.stop();
  }

  protected async write(batch: AuditRecord[]): Promise<void> {
    const rows = batch.map(columns);
    await this.pool.query(INSERT, rows[0]!.map((_, i) => rows.map((row) => row[i])));
    const today = new Date().toISOString().slice(0, 10);
    if (this.options.retentionDays !== undefined && this.prunedDay !== today) {
      this.prunedDay = today;
      await this.prune().catch((err: unknown) => this.options.log.error('audit log: could not remove old records: %s', describeFailure(err, this.options.url)));
    }
  }

  protected failed(err: unknown, count: number, dropped: number | undefined): void {
    this.options.log.error('audit log: could not append %d records to the database: %s', count, describeFailure(err, this.options.url));
    if (dropped !== undefined) this.options.log.error('audit log: %d records dropped so far (the database refuses writes)', dropped);
  }

  /** Delete records past retention; returns how many. */
  async prune(now: number = Date.now()): Promise<number> {
    if (this.options.retentionDays === undefined) return 0;
    const { rowCount } = await this.pool.query('DELETE FROM keygate_audit WHERE time < $1', [new Date(now - this.options.retentionDays * DAY_MS).toISOString()]);
    if (rowCount) this.options.log.info('audit log: removed %d records older than %d days', rowCount, this.options.retentionDays);
    return rowCount ?? 0;
  }

  async *read(filter: AuditFilter, options: AuditReadOptions): AsyncIterable<AuditRecord> {
    await this.flush();
    const direction = options.order === 'asc' ? 'ASC' : 'DESC';
    let left = options.limit ?? Infinity;
    let after: Row | undefined;
    while (left > 0) {
      const params: unknown[] = [];
      const clauses = where(filter, params);
      // Keyset paging on (time, seq): the order every instance's records share.
      if (after) clauses.push(`(time, seq) ${direction === 'ASC' ? '>' : '<'} ($${params.push(after.time)}::timestamptz, $${params.push(after.seq)}::bigint)`);
      const size = Math.min(left, PAGE);
      const { rows } = await this.pool.query<Row>(
        `SELECT seq, time, line FROM keygate_audit ${clauses.length ? `WHERE ${clauses.join(' AND ')}` : ''} ORDER BY time ${direction}, seq ${direction} LIMIT ${size}`,
        params,
      );
      for (const row of rows) yield JSON.parse(row.line) as AuditRecord;
      left -= rows.length;
      if (rows.length < size) return;
      after = rows[rows.length - 1];
    }
  }
}
