import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Store } from '../../server/store/index.ts';

// The one contract every store keeps (server/store/store.ts), run unchanged
// against each backend: `open` gives a new, empty store each time it is
// called. Cases that only one backend has (a file, a lock, a second instance
// on one database) live beside that backend's own tests.

const now = () => Math.floor(Date.now() / 1000);

export function describeStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`store contract: ${name}`, () => {
    const opened: Store[] = [];
    const fresh = async () => {
      const store = await open();
      opened.push(store);
      return store;
    };
    after(async () => {
      for (const store of opened) await store.close();
    });

    test('a record round-trips; destroy removes it; an unknown id is absent', async () => {
      const store = await fresh();
      await store.upsert('clients', 'a', { n: 1, nested: { list: [1, 'two', null, true] } });
      assert.deepEqual(await store.find('clients', 'a'), { n: 1, nested: { list: [1, 'two', null, true] } });
      await store.upsert('clients', 'a', { n: 2 });
      assert.deepEqual(await store.find('clients', 'a'), { n: 2 });
      await store.destroy('clients', 'a');
      await store.destroy('clients', 'never-was');
      assert.equal(await store.find('clients', 'a'), undefined);
      assert.equal(await store.find('clients', 'never-was'), undefined);
    });

    test('kinds are apart: one id in two kinds is two records', async () => {
      const store = await fresh();
      await store.upsert('clients', 'x', { kind: 'client' });
      await store.upsert('accounts', 'x', { kind: 'account' });
      await store.destroy('clients', 'x');
      assert.deepEqual(await store.find('accounts', 'x'), { kind: 'account' });
    });

    test('a returned record is a copy: changing it does not change the store', async () => {
      const store = await fresh();
      await store.upsert('clients', 'a', { list: [1] });
      const copy = (await store.find('clients', 'a')) as { list: number[] };
      copy.list.push(2);
      assert.deepEqual(await store.find('clients', 'a'), { list: [1] });
    });

    test('an expired record is absent to every verb; a record with a future expiry is not', async () => {
      const store = await fresh();
      await store.upsert('refresh_tokens', 'old', { family: 'f', sub: 'alice', client_id: 'c' }, now() - 1);
      await store.upsert('refresh_tokens', 'new', { family: 'f', sub: 'alice', client_id: 'c' }, now() + 600);
      assert.equal(await store.find('refresh_tokens', 'old'), undefined);
      assert.equal(await store.consume('refresh_tokens', 'old'), undefined);
      assert.deepEqual((await store.findBy('refresh_tokens', 'family', 'f')).map(([id]) => id), ['new']);
      assert.equal(await store.update('refresh_tokens', 'old', (current) => current), undefined);
      assert.equal(await store.destroyBy('refresh_tokens', 'subject', 'alice'), 1);
    });

    test('an update keeps the expiry unless given one; null ends it', async () => {
      const store = await fresh();
      await store.upsert('consents', 'kept', { v: 1 }, now() + 600);
      await store.upsert('consents', 'expired', { v: 1 }, now() + 600);
      await store.upsert('consents', 'revived', { v: 1 }, now() - 1);
      await store.update('consents', 'kept', () => ({ v: 2 }));
      await store.update('consents', 'expired', () => ({ v: 2 }), now() - 1);
      assert.deepEqual(await store.update('consents', 'revived', (current) => current ?? { v: 3 }, null), { v: 3 }, 'the expired record is absent to the update');
      assert.deepEqual(await store.find('consents', 'kept'), { v: 2 });
      assert.equal(await store.find('consents', 'expired'), undefined);
      assert.deepEqual(await store.find('consents', 'revived'), { v: 3 });
    });

    test('an update sees the current record (undefined when absent) and may delete it', async () => {
      const store = await fresh();
      const seen: unknown[] = [];
      assert.deepEqual(await store.update('selections', 's', (current) => (seen.push(current), { n: 1 })), { n: 1 });
      assert.deepEqual(await store.update('selections', 's', (current) => (seen.push(current), { n: 2 })), { n: 2 });
      assert.equal(await store.update('selections', 's', (current) => (seen.push(current), undefined)), undefined);
      assert.deepEqual(seen, [undefined, { n: 1 }, { n: 2 }]);
      assert.equal(await store.find('selections', 's'), undefined);
    });

    test('concurrent updates of one record do not interleave: N increments make N', async () => {
      const store = await fresh();
      const n = 40;
      await Promise.all(Array.from({ length: n }, () => store.update('connections', 'counter', (current) => ({ n: ((current as { n: number } | undefined)?.n ?? 0) + 1 }))));
      assert.deepEqual(await store.find('connections', 'counter'), { n });
    });

    test('consume hands a record out exactly once, however many ask at the same time', async () => {
      const store = await fresh();
      await store.upsert('authorization_codes', 'code', { sub: 'alice' });
      const [first, second] = await Promise.all([store.consume('authorization_codes', 'code'), store.consume('authorization_codes', 'code')]);
      assert.deepEqual([first, second].filter((r) => r !== undefined), [{ sub: 'alice' }]);
      await store.upsert('authorization_codes', 'many', { sub: 'bob' });
      const results = await Promise.all(Array.from({ length: 20 }, () => store.consume('authorization_codes', 'many')));
      assert.equal(results.filter((r) => r !== undefined).length, 1);
      assert.equal(await store.find('authorization_codes', 'many'), undefined);
    });

    test('records are listed and deleted by a named index, and only by the value it holds', async () => {
      const store = await fresh();
      await store.upsert('refresh_tokens', '1', { family: 'f', sub: 'alice', client_id: 'app' });
      await store.upsert('refresh_tokens', '2', { family: 'f', sub: 'alice', client_id: 'cli' });
      await store.upsert('refresh_tokens', '3', { family: 'g', sub: 'bob', client_id: 'app' });
      await store.upsert('browser_sessions', '4', { sub: 'alice', auth_time: 1 });
      const ids = async (index: string, value: string) => (await store.findBy('refresh_tokens', index, value)).map(([id]) => id).sort();
      assert.deepEqual(await ids('family', 'f'), ['1', '2']);
      assert.deepEqual(await ids('subject', 'alice'), ['1', '2']);
      assert.deepEqual(await ids('client', 'app'), ['1', '3']);
      assert.deepEqual(await ids('client', 'nobody'), []);
      assert.deepEqual(await store.findBy('refresh_tokens', 'family', 'g'), [['3', { family: 'g', sub: 'bob', client_id: 'app' }]]);
      assert.equal(await store.destroyBy('refresh_tokens', 'family', 'f'), 2);
      assert.deepEqual(await ids('subject', 'alice'), []);
      assert.deepEqual(await store.find('browser_sessions', '4'), { sub: 'alice', auth_time: 1 }, 'another kind with the same field is untouched');
      assert.equal(await store.destroyBy('refresh_tokens', 'family', 'f'), 0);
    });

    test('records are counted by a named index: only live ones holding the value, and only of that kind', async () => {
      const store = await fresh();
      const past = Math.floor(Date.now() / 1000) - 10;
      await store.upsert('clients', 'a', { source: 'dynamic' });
      await store.upsert('clients', 'b', { source: 'dynamic' }, past + 3600);
      await store.upsert('clients', 'c', { source: 'admin' });
      await store.upsert('clients', 'd', { source: 'dynamic' }, past);
      await store.upsert('refresh_tokens', 'e', { family: 'dynamic', sub: 'dynamic', client_id: 'dynamic' });
      assert.equal(await store.countBy('clients', 'source', 'dynamic'), 2, 'the expired one is not counted');
      assert.equal(await store.countBy('clients', 'source', 'admin'), 1);
      assert.equal(await store.countBy('clients', 'source', 'config'), 0);
      await store.destroy('clients', 'a');
      assert.equal(await store.countBy('clients', 'source', 'dynamic'), 1);
      await assert.rejects(store.countBy('clients', 'owner', 'x'), /no index "owner" on clients/);
    });

    test('an index the kind does not declare is refused, as is listing a kind that is not listed whole', async () => {
      const store = await fresh();
      await assert.rejects(store.findBy('refresh_tokens', 'scope', 'x'), /no index "scope" on refresh_tokens/);
      await assert.rejects(store.destroyBy('authorization_codes', 'subject', 'x'), /no index "subject" on authorization_codes/);
      await assert.rejects(store.all('refresh_tokens' as 'clients'), /refresh_tokens is not listed whole/);
    });

    test('a kind listed whole lists every live record with its id', async () => {
      const store = await fresh();
      await store.upsert('switches', 'gateway:team', { disabled: true });
      await store.upsert('switches', 'client:x', { disabled: false });
      await store.upsert('switches', 'gone', { disabled: true }, now() - 1);
      assert.deepEqual((await store.all('switches')).sort(([a], [b]) => a.localeCompare(b)), [
        ['client:x', { disabled: false }],
        ['gateway:team', { disabled: true }],
      ]);
    });

    test('change listeners hear every change of their kind before the write resolves', async () => {
      const store = await fresh();
      const heard: string[] = [];
      const stop = store.onChange('identities', (id) => heard.push(id));
      store.onChange('clients', (id) => heard.push(`client:${id}`));
      const expect = async (write: () => Promise<unknown>, id: string) => {
        const before = heard.length;
        await write();
        assert.deepEqual(heard.slice(before), [id], `heard ${id} by the time the write resolved`);
      };
      await expect(() => store.upsert('identities', 'a', { owner: 'alice', upstream: 'u', availability: 'private' }), 'a');
      await expect(() => store.update('identities', 'a', (c) => ({ ...(c as object), label: 'x' })), 'a');
      await expect(() => store.consume('identities', 'a'), 'a');
      await expect(() => store.upsert('identities', 'b', { owner: 'bob', upstream: 'u', availability: 'private' }), 'b');
      await expect(() => store.destroyBy('identities', 'owner', 'bob'), 'b');
      await store.destroy('identities', 'missing');
      stop();
      await store.upsert('identities', 'c', { owner: 'carol', upstream: 'u', availability: 'private' });
      assert.deepEqual(heard, ['a', 'a', 'a', 'b', 'b']);
    });

    test('withLock runs the holders of one name one after the other, other names meanwhile, and a holder that throws releases it', async () => {
      const store = await fresh();
      const order: string[] = [];
      let releaseFirst!: () => void;
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const first = store.withLock('a', async () => {
        order.push('a1 in');
        entered();
        await new Promise<void>((resolve) => (releaseFirst = resolve));
        order.push('a1 out');
        return 1;
      });
      await inside;
      const second = store.withLock('a', async () => {
        order.push('a2 in');
        return 2;
      });
      assert.equal(await store.withLock('b', async () => (order.push('b'), 3)), 3);
      releaseFirst();
      assert.deepEqual(await Promise.all([first, second]), [1, 2]);
      assert.deepEqual(order, ['a1 in', 'b', 'a1 out', 'a2 in']);
      await assert.rejects(store.withLock('a', async () => Promise.reject(new Error('the work failed'))), /the work failed/);
      assert.equal(await store.withLock('a', async () => 'taken again'), 'taken again');
    });

    test('the store says it is healthy', async () => {
      const store = await fresh();
      assert.equal(await store.healthy(), true);
    });
  });
}
