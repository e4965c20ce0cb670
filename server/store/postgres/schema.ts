import type pg from 'pg';
import { INDEXED_FIELDS } from '../kinds.ts';

// The PostgreSQL schema: one table of records, whatever their kind (and the
// audit log's table, keygate_audit, migrations 2 and 3):
//
//   keygate_records (kind, id) primary key, payload jsonb, expires_at bigint
//   (epoch seconds, NULL: never), seq (insertion order, for listings)
//
// plus one expression index per field that kinds.ts indexes, on
// (kind, payload->>'field'). One table keeps the store's contract in one
// place (every kind is find/upsert/update/consume by id, listed by a named
// index); a kind that outgrows it can get its own table behind the same
// interface later. Migrations are numbered and recorded in
// keygate_schema_migrations; they run at start and by `keygate-registry
// migrate`, in one transaction under an advisory lock, so instances starting
// together apply each migration once.

export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'records',
    sql: `
      CREATE TABLE keygate_records (
        kind text NOT NULL,
        id text NOT NULL,
        payload jsonb NOT NULL,
        expires_at bigint,
        seq bigserial NOT NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX keygate_records_expiry ON keygate_records (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    // The audit log of every instance (postgres-audit.ts): appended in batches, never updated. `line` is the
    // record's JSON exactly as the JSONL export writes it; the columns beside it are what the admin API filters on.
    version: 2,
    name: 'audit',
    sql: `
      CREATE TABLE keygate_audit (
        seq bigserial PRIMARY KEY,
        time timestamptz NOT NULL,
        kind text NOT NULL,
        subject text,
        provider text,
        actor text,
        gateway text,
        outcome text NOT NULL,
        action text,
        target_type text,
        target_id text,
        line text NOT NULL
      );
      CREATE INDEX keygate_audit_by_time ON keygate_audit (time, seq);
      CREATE INDEX keygate_audit_by_subject ON keygate_audit (subject, time);
      CREATE INDEX keygate_audit_by_gateway ON keygate_audit (gateway, time) WHERE gateway IS NOT NULL;
      CREATE INDEX keygate_audit_by_target ON keygate_audit (target_type, target_id, time) WHERE target_type IS NOT NULL;
      CREATE INDEX keygate_audit_by_action ON keygate_audit (action, time) WHERE action IS NOT NULL;
    `,
  },
  {
    // The audit's server and tool filters (the console's, the API's) read columns with an index each, as the
    // others do, rather than parsing every row's line. Generated from the line by the database: for the
    // records already there (the ALTER rewrites the table: on a large log this takes a while, in the
    // migration's transaction), and for those an instance of the previous release still writes during a
    // rolling upgrade (its INSERT does not name them).
    version: 3,
    name: 'audit server and tool',
    sql: `
      ALTER TABLE keygate_audit
        ADD COLUMN server text GENERATED ALWAYS AS (CASE WHEN kind = 'mcp' THEN (line::jsonb)->>'server' END) STORED,
        ADD COLUMN name text GENERATED ALWAYS AS (CASE WHEN kind = 'mcp' THEN (line::jsonb)->>'name' END) STORED;
      CREATE INDEX keygate_audit_by_server ON keygate_audit (server, time) WHERE server IS NOT NULL;
      CREATE INDEX keygate_audit_by_name ON keygate_audit (name, time) WHERE name IS NOT NULL;
    `,
  },
];

/** The SQL expression an index reads; the field is a declared name (kinds.ts), checked here before it meets SQL. */
export function fieldExpression(field: string): string {
  if (!/^[a-z_]+$/.test(field)) throw new Error(`an indexed field must be a lowercase name, got "${field}"`);
  return `(payload->>'${field}')`;
}

const MIGRATION_LOCK = 0x6b657967; // "keyg": one advisory lock key for schema changes
/**
 * A migration may rewrite a large table (migration 3 adds two columns to every audit record: about
 * 13 s per million records on a 2-core VM), and an instance starting meanwhile waits for it at the
 * lock: neither is cut short by the pool's query timeout.
 */
const MIGRATION_TIMEOUT_MS = 60 * 60_000;

/** Apply what is missing; returns the names of what was applied (migrations and new indexes). */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('BEGIN');
    await client.query({ text: 'SELECT pg_advisory_xact_lock($1)', values: [MIGRATION_LOCK], query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
    await client.query('CREATE TABLE IF NOT EXISTS keygate_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM keygate_schema_migrations')).rows.map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query({ text: m.sql, query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
      await client.query('INSERT INTO keygate_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(`${m.version} ${m.name}`);
    }
    // The indexes kinds.ts declares: one per field, created when a new one appears.
    const existing = new Set((await client.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'keygate_records'")).rows.map((r) => r.indexname));
    for (const field of INDEXED_FIELDS) {
      const name = `keygate_records_by_${field}`;
      if (existing.has(name)) continue;
      await client.query(`CREATE INDEX ${name} ON keygate_records (kind, ${fieldExpression(field)})`);
      applied.push(`index ${name}`);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
