import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LowdbStore } from '../../server/store/lowdb/lowdb-store.ts';
import { MemoryStore } from '../../server/store/memory-store.ts';
import { StoreError } from '../../server/store/index.ts';
import { describeStoreContract } from '../helpers/store-contract.ts';

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-store-'));
  dirs.push(dir);
  return join(dir, 'store.json');
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describeStoreContract('memory', async () => new MemoryStore());
describeStoreContract('lowdb', () => LowdbStore.open(tempFile()));

describe('lowdb store', () => {
  test('records round-trip, survive a reopen, and update atomically', async () => {
    const file = tempFile();
    const store = await LowdbStore.open(file);
    await store.upsert('clients', 'a', { n: 1 });
    await store.upsert('clients', 'b', { n: 2 });
    assert.deepEqual(await store.update('clients', 'a', (c) => ({ n: (c as { n: number }).n + 10 })), { n: 11 });
    await store.destroy('clients', 'b');
    await store.close();

    const again = await LowdbStore.open(file);
    assert.deepEqual(await again.find('clients', 'a'), { n: 11 });
    assert.equal(await again.find('clients', 'b'), undefined);
    assert.deepEqual(await again.all('clients'), [['a', { n: 11 }]]);
    await again.close();
  });

  test('expired records are swept from the file', async () => {
    const file = tempFile();
    const store = await LowdbStore.open(file);
    const now = Math.floor(Date.now() / 1000);
    await store.upsert('refresh_tokens', 'old', { x: 1 }, now - 1);
    await store.upsert('refresh_tokens', 'new', { x: 2 }, now + 600);
    assert.equal(await store.find('refresh_tokens', 'old'), undefined);
    assert.equal(await store.sweep(), 1);
    assert.ok(!readFileSync(file, 'utf8').includes('"old"'));
    await store.close();
  });

  test('an update keeps the expiry, sets a new one, or (null) ends it', async () => {
    const file = tempFile();
    const store = await LowdbStore.open(file);
    const now = Math.floor(Date.now() / 1000);
    for (const id of ['kept', 'moved', 'ended']) await store.upsert('clients', id, { v: 1 }, now + 600);
    await store.update('clients', 'kept', () => ({ v: 2 }));
    await store.update('clients', 'moved', () => ({ v: 2 }), now + 60);
    await store.update('clients', 'ended', () => ({ v: 2 }), null);
    const records = (JSON.parse(readFileSync(file, 'utf8')) as { collections: { clients: Record<string, { payload: unknown; expires_at?: number }> } }).collections.clients;
    assert.deepEqual(records, { kept: { payload: { v: 2 }, expires_at: now + 600 }, moved: { payload: { v: 2 }, expires_at: now + 60 }, ended: { payload: { v: 2 } } });
    await store.close();
  });

  test('a corrupt file stops start-up with a clear error and is never overwritten', async () => {
    for (const content of ['{"version":1,"collections":{', '[]', '{"version":2,"collections":{}}', '']) {
      const file = tempFile();
      writeFileSync(file, content);
      await assert.rejects(LowdbStore.open(file), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, 'ERR_STORE_CORRUPT');
        assert.match(err.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*left untouched`));
        return true;
      });
      assert.equal(readFileSync(file, 'utf8'), content);
    }
  });

  test('an unreadable store is reported as such', async () => {
    const file = tempFile();
    mkdirSync(file); // a directory where the file should be
    await assert.rejects(LowdbStore.open(file), (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_UNREADABLE');
  });

  test('a second process cannot open the same store; a stale lock is taken over', async () => {
    const file = tempFile();
    const store = await LowdbStore.open(file);
    // This process holds the lock: pretend another live process (our parent) does.
    writeFileSync(`${file}.lock`, String(process.ppid));
    await assert.rejects(LowdbStore.open(file), (err: unknown) => err instanceof StoreError && err.code === 'ERR_STORE_LOCKED');
    writeFileSync(`${file}.lock`, String(process.pid));
    await store.close();
    writeFileSync(`${file}.lock`, '999999999'); // no such process
    const again = await LowdbStore.open(file);
    await again.close();
  });

  test('a process killed mid-write leaves the old or the new state, never a torn file', { timeout: 60_000 }, async () => {
    const file = tempFile();
    const writer = `
      import { LowdbStore } from ${JSON.stringify(new URL('../../server/store/lowdb/lowdb-store.ts', import.meta.url).pathname)};
      const store = await LowdbStore.open(${JSON.stringify(file)});
      const blob = 'x'.repeat(4096);
      process.stdout.write('ready\\n');
      for (let i = 0; ; i++) await store.upsert('clients', 'counter', { i, blob, list: Array.from({ length: 50 }, (_, k) => ({ k, i })) });
    `;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 150 + round * 40));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      rmSync(`${file}.lock`, { force: true });
      const store = await LowdbStore.open(file); // throws if torn
      const record = (await store.find('clients', 'counter')) as { i: number; list: { i: number }[] } | undefined;
      if (record) assert.ok(record.list.every((e) => e.i === record.i), 'a record is whole');
      await store.close();
      assert.deepEqual(readdirSync(dirname(file)).filter((n) => n.endsWith('.tmp')), [], 'temp files of the killed writer are cleaned up');
    }
  });
});
