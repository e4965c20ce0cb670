import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AuditEntry, AuditFilter, AuditReadOptions } from '../../server/audit/audit.ts';
import { FileAudit } from '../../server/audit/file-audit.ts';
import { memoryLogger } from '../../server/log.ts';

// The JSONL audit sink on its own: batching, one file per UTC day, torn lines
// after a crash, retention by whole files, reading back in either order, and
// a disk that refuses writes.

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-auditfile-'));
  dirs.push(dir);
  return dir;
}

let n = 0;
function entry(time: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  n++;
  return { time, request_id: `r${n}`, subject: 'alice', provider: 'registry', client_id: 'c', gateway: 'team', server: 'demo', upstream: 'demo', identity: 'svc', http_method: 'POST', method: 'tools/call', name: 'echo', outcome: 'ok', status: 200, latency_ms: 1.5, ...overrides };
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

/** Poll (up to 1 s) until the file holds `count` lines: the write happens on its own, in the background. */
async function waitForLines(file: string, count: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    if (existsSync(file) && lines(file).length >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return existsSync(file) ? lines(file) : [];
}

async function collect(audit: FileAudit, filter: AuditFilter, options: AuditReadOptions): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of audit.read(filter, options)) ids.push(e.request_id);
  return ids;
}

describe('batching', () => {
  test('record() only buffers: nothing reaches the disk before the interval or a flush', async () => {
    const dir = join(tempDir(), 'audit');
    const audit = new FileAudit({ dir, log: memoryLogger(), flushIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) audit.record(entry('2026-03-01T10:00:00.000Z'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(existsSync(dir), false, 'no write yet');
    await audit.flush();
    assert.equal(lines(join(dir, '2026-03-01.jsonl')).length, 3);
    await audit.close();
  });

  test('the interval flushes on its own', async () => {
    const dir = join(tempDir(), 'audit');
    const audit = new FileAudit({ dir, log: memoryLogger(), flushIntervalMs: 30 });
    audit.record(entry('2026-03-01T10:00:00.000Z'));
    assert.equal((await waitForLines(join(dir, '2026-03-01.jsonl'), 1)).length, 1);
    await audit.close();
  });

  test('a full batch is written at once, without waiting for the interval', async () => {
    const dir = join(tempDir(), 'audit');
    const audit = new FileAudit({ dir, log: memoryLogger(), flushIntervalMs: 60_000, maxBatch: 5 });
    for (let i = 0; i < 5; i++) audit.record(entry('2026-03-01T10:00:00.000Z'));
    const file = join(dir, '2026-03-01.jsonl');
    assert.equal((await waitForLines(file, 5)).length, 5);
    audit.record(entry('2026-03-01T10:00:01.000Z'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(lines(file).length, 5, 'the next entry waits for its batch');
    await audit.close();
    assert.equal(lines(file).length, 6, 'close flushes');
  });

  test('entries go to the file of their UTC day', async () => {
    const dir = join(tempDir(), 'audit');
    const audit = new FileAudit({ dir, log: memoryLogger() });
    audit.record(entry('2026-01-01T23:59:59.999Z'));
    audit.record(entry('2026-01-02T00:00:00.000Z'));
    await audit.close();
    assert.deepEqual(readdirSync(dir).sort(), ['2026-01-01.jsonl', '2026-01-02.jsonl']);
  });
});

describe('append-only', () => {
  test('a line torn by a crash is skipped when read, and the next append starts on a line of its own', async () => {
    const dir = join(tempDir(), 'audit');
    mkdirSync(dir);
    const file = join(dir, '2026-03-02.jsonl');
    const kept = entry('2026-03-02T08:00:00.000Z');
    writeFileSync(file, `${JSON.stringify(kept)}\n{"time":"2026-03-02T08:00:01.000Z","request_id":"torn","gat`);
    const audit = new FileAudit({ dir, log: memoryLogger() });
    const next = entry('2026-03-02T09:00:00.000Z');
    audit.record(next);
    await audit.flush();
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith(`${JSON.stringify(kept)}\n{"time":"2026-03-02T08:00:01.000Z","request_id":"torn","gat\n`), 'what was there is untouched');
    assert.deepEqual(await collect(audit, {}, { order: 'asc' }), [kept.request_id, next.request_id]);
    await audit.close();
  });

  test('retention deletes whole day files once every entry in them is older than retention_days, never lines within a file', async () => {
    const dir = join(tempDir(), 'audit');
    mkdirSync(dir);
    const now = Date.parse('2026-06-30T12:00:00Z');
    for (const day of ['2026-05-01', '2026-05-30', '2026-05-31', '2026-06-30']) writeFileSync(join(dir, `${day}.jsonl`), `${JSON.stringify(entry(`${day}T00:00:00.000Z`))}\n`);
    writeFileSync(join(dir, 'notes.txt'), 'not a day file');
    const audit = new FileAudit({ dir, log: memoryLogger(), retentionDays: 30 });
    const removed = await audit.prune(now);
    // 2026-05-31's last entry (23:59:59) is not 30 days old yet at 2026-06-30T12:00.
    assert.deepEqual(removed.sort(), ['2026-05-01.jsonl', '2026-05-30.jsonl']);
    assert.deepEqual(readdirSync(dir).sort(), ['2026-05-31.jsonl', '2026-06-30.jsonl', 'notes.txt']);
    assert.deepEqual(await new FileAudit({ dir, log: memoryLogger() }).prune(now), [], 'without retention_days nothing is removed');
  });
});

describe('reading back', () => {
  test('newest first or oldest first, across days, with filters and a limit', async () => {
    const dir = join(tempDir(), 'audit');
    const audit = new FileAudit({ dir, log: memoryLogger() });
    const e1 = entry('2026-04-01T10:00:00.000Z');
    const e2 = entry('2026-04-01T11:00:00.000Z', { subject: 'bob' });
    const e3 = entry('2026-04-02T09:00:00.000Z', { outcome: 'identity_disabled', status: 403 });
    const e4 = entry('2026-04-03T09:00:00.000Z', { gateway: 'open', subject: undefined });
    for (const e of [e1, e2, e3, e4]) audit.record(e);
    await audit.flush();
    assert.deepEqual(await collect(audit, {}, { order: 'asc' }), [e1, e2, e3, e4].map((e) => e.request_id));
    assert.deepEqual(await collect(audit, {}, { order: 'desc' }), [e4, e3, e2, e1].map((e) => e.request_id));
    assert.deepEqual(await collect(audit, {}, { order: 'desc', limit: 3 }), [e4, e3, e2].map((e) => e.request_id));
    assert.deepEqual(await collect(audit, { subject: 'alice' }, { order: 'asc' }), [e1, e3].map((e) => e.request_id));
    assert.deepEqual(await collect(audit, { outcome: 'error' }, { order: 'asc' }), [e3.request_id]);
    assert.deepEqual(await collect(audit, { gateway: 'open' }, { order: 'asc' }), [e4.request_id]);
    assert.deepEqual(await collect(audit, { since: Date.parse('2026-04-01T10:30:00Z'), until: Date.parse('2026-04-02T09:00:00Z') }, { order: 'asc' }), [e2, e3].map((e) => e.request_id));
    assert.deepEqual(await collect(audit, { since: Date.parse('2026-04-01T10:30:00Z') }, { order: 'desc', limit: 1 }), [e4.request_id]);
    await audit.close();
  });

  test('reading flushes what was recorded first', async () => {
    const audit = new FileAudit({ dir: join(tempDir(), 'audit'), log: memoryLogger(), flushIntervalMs: 60_000 });
    const e = entry('2026-04-05T10:00:00.000Z');
    audit.record(e);
    assert.deepEqual(await collect(audit, {}, { order: 'desc' }), [e.request_id]);
    await audit.close();
  });
});

describe('a disk that refuses writes', () => {
  test('record() never throws; the failure is logged and the entries are written once the disk accepts them', async () => {
    const root = tempDir();
    const blocker = join(root, 'blocked');
    writeFileSync(blocker, 'a file where the directory should be');
    const log = memoryLogger();
    const audit = new FileAudit({ dir: join(blocker, 'audit'), log, flushIntervalMs: 60_000 });
    const e = entry('2026-04-06T10:00:00.000Z');
    audit.record(e);
    await audit.flush();
    assert.ok(log.lines.some((l) => /could not append 1 entries/.test(l)), log.lines.join('\n'));
    unlinkSync(blocker);
    await audit.flush();
    assert.deepEqual(lines(join(blocker, 'audit', '2026-04-06.jsonl')).map((l) => (JSON.parse(l) as AuditEntry).request_id), [e.request_id]);
    await audit.close();
  });
});
