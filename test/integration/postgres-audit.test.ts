import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AdminChange, AuditEntry, AuditFilter, AuditLog, AuditReadOptions, AuditRecord } from '../../server/audit/audit.ts';
import { FileAudit } from '../../server/audit/file-audit.ts';
import { memoryLogger } from '../../server/log.ts';
import postgres from 'pg';
import { PostgresStore } from '../../server/store/postgres/postgres-store.ts';
import { MIGRATIONS } from '../../server/store/postgres/schema.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// The audit log in PostgreSQL on its own (storage.type: postgres): it answers
// every filter (the server and tool ones too), in both orders, exactly as
// the JSONL files do; it pages
// through exports larger than one query; a record is only buffered until its
// batch is written, and then every instance reads it; retention deletes old
// records only. On a real PostgreSQL (test/helpers/postgres.ts).

let pg: TestPostgres;
const stores: PostgresStore[] = [];
const dirs: string[] = [];

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await pg?.stop();
});

async function openStore(url?: string): Promise<PostgresStore> {
  const store = await PostgresStore.open({ url: url ?? (await pg.createDatabase()) });
  stores.push(store);
  return store;
}

let n = 0;
function call(time: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  n++;
  return { kind: 'mcp', time, request_id: `r${n}`, subject: 'alice', provider: 'registry', client_id: 'c', gateway: 'team', server: 'demo', upstream: 'demo', identity: 'svc', http_method: 'POST', method: 'tools/call', name: 'echo', outcome: 'ok', status: 200, latency_ms: 1.5, ...overrides };
}
function change(time: string, overrides: Partial<AdminChange> = {}): AdminChange {
  n++;
  return { kind: 'admin', time, request_id: `r${n}`, subject: 'carol', provider: 'registry', client_id: 'c', via: 'api', action: 'gateway.update', target: { type: 'gateway', id: 'team' }, outcome: 'ok', status: 200, ...overrides };
}

async function ids(audit: AuditLog, filter: AuditFilter, options: AuditReadOptions): Promise<string[]> {
  const found: string[] = [];
  for await (const e of audit.read(filter, options)) found.push(e.request_id);
  return found;
}

describe('the PostgreSQL audit log', () => {
  test('answers every filter, in both orders and with limits, as the JSONL files do', async () => {
    const records: AuditRecord[] = [
      call('2026-03-01T10:00:00.000Z'),
      call('2026-03-01T10:00:01.000Z', { subject: 'bob', gateway: 'other', outcome: 'identity_missing', status: 403 }),
      call('2026-03-01T23:59:59.999Z', { actor: 'agent-1', provider: 'oauth' }),
      change('2026-03-02T00:00:00.000Z'),
      change('2026-03-02T08:00:00.000Z', { action: 'client.create', target: { type: 'client', id: 'urn:x:client' }, outcome: 'denied', status: 403, error: 'insufficient_scope' }),
      change('2026-03-02T09:00:00.000Z', { action: 'gateway.create', target: { type: 'gateway' }, outcome: 'failed', status: 400, error: 'invalid_request' }),
      call('2026-03-03T12:00:00.000Z', { outcome: 'upstream_unreachable', status: 502, subject: 'bob' }),
      call('2026-03-03T12:00:00.000Z', { subject: 'bob' }), // the same millisecond: written order breaks the tie
      call('2026-03-03T13:00:00.000Z', { server: 'wiki', upstream: 'wiki', name: 'search' }),
      call('2026-03-03T14:00:00.000Z', { server: 'wiki', upstream: 'wiki', name: 'echo', outcome: 'policy_denied', status: 200 }),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'keygate-pgaudit-'));
    dirs.push(dir);
    const file = new FileAudit({ dir, log: memoryLogger() });
    const db = (await openStore()).auditLog({ log: memoryLogger() });
    for (const r of records) {
      file.record(r);
      db.record(r);
    }
    await Promise.all([file.flush(), db.flush()]);

    const at = (iso: string) => Date.parse(iso);
    const filters: AuditFilter[] = [
      {},
      { kind: 'mcp' },
      { kind: 'admin' },
      { subject: 'bob' },
      { provider: 'oauth' },
      { actor: 'agent-1' },
      { gateway: 'team' },
      { gateway: 'other' },
      { outcome: 'ok' },
      { outcome: 'error' },
      { outcome: 'identity_missing' },
      { action: 'client.create' },
      { target: 'gateway' },
      { target: 'gateway:team' },
      { target: 'client:urn:x:client' },
      { target: 'client:urn' },
      { since: at('2026-03-01T23:59:59.999Z') },
      { until: at('2026-03-02T00:00:00.000Z') },
      { since: at('2026-03-02T00:00:00.000Z'), until: at('2026-03-02T08:00:00.000Z') },
      { kind: 'mcp', subject: 'bob', outcome: 'error' },
      { server: 'demo' },
      { server: 'wiki' },
      { tool: 'echo' },
      { tool: 'search' },
      { server: 'wiki', tool: 'echo' },
      { gateway: 'team', server: 'wiki', outcome: 'error' },
    ];
    for (const filter of filters) {
      for (const options of [{ order: 'asc' }, { order: 'desc' }, { order: 'desc', limit: 2 }, { order: 'asc', limit: 1 }] as AuditReadOptions[]) {
        assert.deepEqual(await ids(db, filter, options), await ids(file, filter, options), `${JSON.stringify(filter)} ${JSON.stringify(options)}`);
      }
    }
    // The server and tool filters find what they name, and only that (not a vacuous agreement of two empty answers).
    assert.deepEqual(await ids(db, { server: 'wiki', tool: 'echo' }, { order: 'asc' }), [records.at(-1)!.request_id]);
    assert.equal((await ids(db, { tool: 'echo' }, { order: 'asc' })).length, 6);
    // And the records come back as they were written, field for field.
    const back: AuditRecord[] = [];
    for await (const e of db.read({}, { order: 'asc' })) back.push(e);
    assert.deepEqual(back.map((e) => JSON.stringify(e)), records.map((r) => JSON.stringify(r)));
    await Promise.all([file.close(), db.close()]);
  });

  test('an export larger than one query comes back whole and in order', async () => {
    const db = (await openStore()).auditLog({ log: memoryLogger() });
    const written: string[] = [];
    for (let i = 0; i < 2345; i++) {
      const r = call(new Date(Date.UTC(2026, 2, 1) + i * 1000).toISOString());
      written.push(r.request_id);
      db.record(r);
    }
    await db.flush();
    assert.deepEqual(await ids(db, {}, { order: 'asc' }), written);
    assert.deepEqual(await ids(db, {}, { order: 'desc', limit: 1500 }), written.slice(-1500).reverse());
    await db.close();
  });

  test("a record is only buffered until its batch is written; then another instance's log reads it", async () => {
    const url = await pg.createDatabase();
    const writer = (await openStore(url)).auditLog({ log: memoryLogger(), flushIntervalMs: 60_000 });
    const reader = (await openStore(url)).auditLog({ log: memoryLogger() });
    const r = call(new Date().toISOString());
    writer.record(r);
    assert.deepEqual(await ids(reader, {}, { order: 'asc' }), [], 'not written yet: record() does not touch the database');
    await writer.flush();
    assert.deepEqual(await ids(reader, {}, { order: 'asc' }), [r.request_id]);
    await writer.close();
    await reader.close();
  });

  test('retention deletes the records older than retention_days, and only with retention_days', async () => {
    const url = await pg.createDatabase();
    const day = 86_400_000;
    const old = call(new Date(Date.now() - 40 * day).toISOString());
    const recent = call(new Date(Date.now() - 1 * day).toISOString());
    const keeping = (await openStore(url)).auditLog({ log: memoryLogger() });
    keeping.record(old);
    keeping.record(recent);
    await keeping.flush();
    assert.deepEqual(await ids(keeping, {}, { order: 'asc' }), [old.request_id, recent.request_id], 'without retention_days nothing is removed');

    const log = memoryLogger();
    const pruning = (await openStore(url)).auditLog({ log, retentionDays: 30 });
    pruning.record(call(new Date().toISOString()));
    await pruning.flush(); // the first write of the day prunes
    const left = await ids(pruning, {}, { order: 'asc' });
    assert.ok(!left.includes(old.request_id), 'the 40-day-old record is gone');
    assert.ok(left.includes(recent.request_id), 'the 1-day-old record stays');
    await keeping.close();
    await pruning.close();
  });

  test('records written before the server and tool columns (schema 2), and by an instance of that release during a rolling upgrade, are found by those filters, as are new ones', async () => {
    const url = await pg.createDatabase();
    // A database as the previous version left it: migrations 1 and 2, rows written with their columns.
    const client = new postgres.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE keygate_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    for (const m of MIGRATIONS.filter((m) => m.version <= 2)) {
      await client.query(m.sql);
      await client.query('INSERT INTO keygate_schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    const earlier = [call('2026-04-01T10:00:00.000Z'), call('2026-04-01T11:00:00.000Z', { server: 'wiki', name: 'search' }), change('2026-04-01T12:00:00.000Z')];
    /** A record as the previous release wrote it (its columns, no server or name). */
    const writeAsBefore = (r: AuditRecord) => {
      const mcp = r.kind !== 'admin' ? (r as AuditEntry) : undefined;
      return client.query('INSERT INTO keygate_audit (time, kind, subject, gateway, outcome, action, line) VALUES ($1, $2, $3, $4, $5, $6, $7)', [r.time, r.kind ?? 'mcp', r.subject ?? null, mcp?.gateway ?? null, r.outcome, mcp ? null : (r as AdminChange).action, JSON.stringify(r)]);
    };
    for (const r of earlier) await writeAsBefore(r);

    const db = (await openStore(url)).auditLog({ log: memoryLogger() });
    const later = call('2026-04-02T10:00:00.000Z', { server: 'wiki', name: 'echo' });
    db.record(later);
    await db.flush();
    // Migrated: an instance of the previous release, not replaced yet, writes another.
    const stillOld = call('2026-04-02T11:00:00.000Z', { server: 'wiki', name: 'search' });
    await writeAsBefore(stillOld);
    await client.end();
    assert.deepEqual(await ids(db, { server: 'wiki' }, { order: 'asc' }), [earlier[1]!.request_id, later.request_id, stillOld.request_id]);
    assert.deepEqual(await ids(db, { server: 'demo' }, { order: 'asc' }), [earlier[0]!.request_id]);
    assert.deepEqual(await ids(db, { tool: 'search' }, { order: 'asc' }), [earlier[1]!.request_id, stillOld.request_id]);
    assert.deepEqual(await ids(db, { tool: 'echo' }, { order: 'desc' }), [later.request_id, earlier[0]!.request_id]);
    assert.deepEqual(await ids(db, { server: 'wiki', tool: 'echo' }, { order: 'asc' }), [later.request_id]);
    // An admin change names no server or tool, whatever its line holds.
    assert.deepEqual(await ids(db, { kind: 'admin' }, { order: 'asc' }), [earlier[2]!.request_id]);
    await db.close();
  });
});
