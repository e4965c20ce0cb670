import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pgDriver from 'pg';
import { parseConfig } from '../../server/config/load.ts';
import { openStore, StoreError } from '../../server/store/index.ts';
import { migrateSchema } from '../../server/store/migrate.ts';
import { PostgresStore } from '../../server/store/postgres/postgres-store.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { describeStoreContract } from '../helpers/store-contract.ts';

// The PostgreSQL store on a real PostgreSQL (test/helpers/postgres.ts): the
// store contract, then what only a shared database has: a second instance.

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

describeStoreContract('postgres', async () => PostgresStore.open({ url: await pg.createDatabase() }));

describe('postgres store: two instances on one database', () => {
  const opened: PostgresStore[] = [];
  const open = async (url: string) => {
    const store = await PostgresStore.open({ url });
    opened.push(store);
    return store;
  };
  after(async () => {
    for (const s of opened) await s.close();
  });

  test('every change made on one instance reaches the listeners of the other; the bound is measured', { timeout: 30_000 }, async (t) => {
    const url = await pg.createDatabase();
    const a = await open(url);
    const b = await open(url);
    const heard: string[] = [];
    const waiting = new Map<string, () => void>();
    b.onChange('identities', (id) => {
      heard.push(id);
      waiting.get(id)?.();
    });
    const reaches = (id: string) => new Promise<void>((resolve) => waiting.set(id, resolve));

    const verbs: [string, () => Promise<unknown>][] = [
      ['upserted', () => a.upsert('identities', 'upserted', { owner: 'alice', upstream: 'u', availability: 'private' })],
      ['upserted', () => a.update('identities', 'upserted', (c) => ({ ...(c as object), label: 'x' }))],
      ['upserted', () => a.consume('identities', 'upserted')],
      ['destroyed', () => a.upsert('identities', 'destroyed', { owner: 'bob', upstream: 'u', availability: 'private' })],
      ['destroyed', () => a.destroy('identities', 'destroyed')],
      ['by-owner', () => a.upsert('identities', 'by-owner', { owner: 'carol', upstream: 'u', availability: 'private' })],
      ['by-owner', () => a.destroyBy('identities', 'owner', 'carol')],
    ];
    for (const [id, write] of verbs) {
      const arrived = reaches(id);
      await write();
      await arrived;
    }
    assert.deepEqual(heard, verbs.map(([id]) => id));
    assert.equal(await b.find('identities', 'upserted'), undefined, 'and B reads what A wrote');

    // The bound on "soon": when B's listener hears a write, measured from the start of A's write and from its end (B may hear it first).
    const sinceStart: number[] = [];
    const sinceEnd: number[] = [];
    for (let i = 0; i < 200; i++) {
      let heardAt = 0;
      const arrived = reaches(`m${i}`).then(() => (heardAt = performance.now()));
      const started = performance.now();
      await a.upsert('identities', `m${i}`, { owner: 'dave', upstream: 'u', availability: 'private' });
      const written = performance.now();
      await arrived;
      sinceStart.push(heardAt - started);
      sinceEnd.push(Math.max(0, heardAt - written));
    }
    const figures = (d: number[]) => {
      d.sort((x, y) => x - y);
      return `p50 ${d[Math.floor(d.length / 2)]!.toFixed(2)} ms, p99 ${d[Math.floor(d.length * 0.99)]!.toFixed(2)} ms, max ${d.at(-1)!.toFixed(2)} ms`;
    };
    t.diagnostic(`cross-instance change delivery over ${sinceStart.length} writes: from the write's start ${figures(sinceStart)}; after the write resolved ${figures(sinceEnd)}`);
  });

  test('across instances a record is consumed once and concurrent updates all count', async () => {
    const url = await pg.createDatabase();
    const a = await open(url);
    const b = await open(url);
    for (let round = 0; round < 10; round++) {
      await a.upsert('authorization_codes', `code${round}`, { sub: 'alice' });
      const got = await Promise.all([a.consume('authorization_codes', `code${round}`), b.consume('authorization_codes', `code${round}`)]);
      assert.equal(got.filter((r) => r !== undefined).length, 1, `round ${round}: exactly one instance got the code`);
    }
    const increment = (c: unknown) => ({ n: ((c as { n: number } | undefined)?.n ?? 0) + 1 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).update('connections', 'counter', increment)));
    assert.deepEqual(await a.find('connections', 'counter'), { n: 30 });
  });

  test('a LISTEN connection that is lost is opened again, then the reset listeners are told (to reload); the other instance is heard again', async () => {
    const url = await pg.createDatabase();
    const a = await open(url);
    const b = await open(url);
    let resets = 0;
    b.onReset(() => resets++);
    const heard: string[] = [];
    b.onChange('switches', (id) => heard.push(id));
    const until = async (check: () => boolean, what: string) => {
      for (let i = 0; !check(); i++) {
        assert.ok(i < 400, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    const db = new pgDriver.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'keygate-registry listen%'");
      assert.equal(rows.length, 2, 'both instances listen on a connection of their own, named for the process');
      await until(() => resets === 1, 'the reset after listening again');
      await a.upsert('switches', 'after', { disabled: true });
      await until(() => heard.includes('after'), 'a change made after the reset');
    } finally {
      await db.end();
    }
  });

  test('a lock one instance holds keeps the other waiting until it is released, also when the holder fails', async () => {
    const url = await pg.createDatabase();
    const a = await open(url);
    const b = await open(url);
    for (const outcome of ['resolves', 'throws'] as const) {
      const order: string[] = [];
      let release!: () => void;
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const held = a.withLock('refresh identity x', async () => {
        order.push('a in');
        entered();
        await new Promise<void>((resolve) => (release = resolve));
        order.push('a out');
        if (outcome === 'throws') throw new Error('the authorization server is down');
      });
      await inside;
      const waiting = b.withLock('refresh identity x', async () => void order.push('b in'));
      // Another name is free meanwhile, on the other instance too.
      await b.withLock('refresh identity y', async () => void order.push('b other'));
      release();
      await (outcome === 'throws' ? assert.rejects(held, /down/) : held);
      await waiting;
      assert.deepEqual(order, ['a in', 'b other', 'a out', 'b in'], outcome);
    }
  });

  test('records and their expiry survive a restart; migrations are applied once', async () => {
    const url = await pg.createDatabase();
    const first = await open(url);
    await first.upsert('refresh_tokens', 'live', { family: 'f', sub: 'alice', client_id: 'c' }, now() + 600);
    await first.upsert('refresh_tokens', 'dead', { family: 'f', sub: 'alice', client_id: 'c' }, now() - 1);
    await first.close();
    const storage = parseConfig({ storage: { type: 'postgres' }, vault: { key_env: 'VAULT_KEY' } }, '(test)').storage;
    assert.deepEqual(await migrateSchema(storage, { KEYGATE_DATABASE_URL: url }), [], 'the start applied every migration');
    const again = await open(url);
    assert.deepEqual((await again.findBy('refresh_tokens', 'family', 'f')).map(([id]) => id), ['live']);
    assert.equal(await again.sweep(), 1);
  });
});

describe('postgres store: failures', () => {
  const key = { key_env: 'VAULT_KEY' };

  test('an unset url_env variable is named; a refused connection does not show the password', async () => {
    const storage = parseConfig({ storage: { type: 'postgres', url_env: 'DB_URL' }, vault: key }, '(test)').storage;
    await assert.rejects(openStore(storage, '/nonexistent', {}), (err: unknown) => err instanceof StoreError && /DB_URL \(storage\.url_env\) is not set/.test(err.message));
    const wrong = pg.url.replace(/:[^:@/]+@/, ':not-the-password-x9@');
    await assert.rejects(openStore(storage, '/nonexistent', { DB_URL: wrong }), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.match(err.message, /cannot open the PostgreSQL store: 28P01: password authentication failed/);
      assert.ok(!err.message.includes('not-the-password-x9'));
      return true;
    });
  });
});
