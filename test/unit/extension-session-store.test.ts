import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Keychain } from '../../extension/auth/keychain.ts';
import { SessionStore, type StoredSession } from '../../extension/auth/session-store.ts';
import { Logger } from '../../extension/log.ts';
import { MemorySecretStore, RecordingSink } from './extension-fakes.ts';

// Sessions at rest in SecretStorage, through the one keychain module.

const REGISTRY = 'http://127.0.0.1:8787';
const session: StoredSession = {
  id: 'session-1',
  registry: REGISTRY,
  account: { id: 'alice', label: 'alice@example.com' },
  scopes: ['mcp:read', 'offline_access'],
  accessToken: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl',
  refreshToken: 'refresh-token-0123456789abcdef',
  expiresAt: 1_900_000_000_000,
};

function setup() {
  const secrets = new MemorySecretStore();
  const sink = new RecordingSink();
  const log = new Logger(sink);
  const store = new SessionStore(new Keychain(secrets, log), log);
  const changes: string[] = [];
  store.onDidChange((registry) => changes.push(registry));
  return { secrets, sink, log, store, changes };
}

describe('extension session store', () => {
  test('a session round-trips through the secret storage, filed under its registry', async () => {
    const { secrets, store } = setup();
    assert.equal(await store.get(REGISTRY), undefined);
    await store.set(session);
    assert.deepEqual(await store.get(REGISTRY), session);
    assert.deepEqual([...secrets.values.keys()], [`keygate:session:${REGISTRY}`]);
    assert.equal(await store.get('https://other.example'), undefined, 'another registry sees nothing');
    await store.delete(REGISTRY);
    assert.equal(await store.get(REGISTRY), undefined);
    assert.equal(secrets.values.size, 0);
  });

  test('every write and delete is announced with the registry it concerns', async () => {
    const { store, changes } = setup();
    await store.set(session);
    await store.set({ ...session, accessToken: 'eyJ.another.token' });
    await store.delete(REGISTRY);
    assert.deepEqual(changes, [REGISTRY, REGISTRY, REGISTRY]);
  });

  test('a change made by another window (same storage) is announced too; foreign keys are not', async () => {
    const { secrets, changes } = setup();
    await secrets.store(`keygate:session:${REGISTRY}`, JSON.stringify(session));
    await secrets.store('some-other-extension-key', 'x');
    assert.deepEqual(changes, [REGISTRY]);
  });

  test('a value that is not a session is discarded, not trusted', async () => {
    const { secrets, store, sink } = setup();
    for (const bad of ['not json', JSON.stringify({ ...session, accessToken: '' }), JSON.stringify({ id: 'x' })]) {
      await secrets.store(`keygate:session:${REGISTRY}`, bad);
      assert.equal(await store.get(REGISTRY), undefined);
      assert.equal(secrets.values.size, 0, `removed: ${bad.slice(0, 20)}`);
    }
    assert.ok(sink.lines.some((l) => l.includes('not in the expected form')));
  });

  test('a session filed under another registry is not handed out for this one', async () => {
    const { secrets, store } = setup();
    await secrets.store(`keygate:session:${REGISTRY}`, JSON.stringify({ ...session, registry: 'https://evil.example' }));
    assert.equal(await store.get(REGISTRY), undefined);
    assert.equal(secrets.values.size, 0);
  });

  test('unknown fields written by a newer version are dropped on read', async () => {
    const { secrets, store } = setup();
    await secrets.store(`keygate:session:${REGISTRY}`, JSON.stringify({ ...session, future: true }));
    assert.deepEqual(await store.get(REGISTRY), session);
  });

  test('an unreadable keychain means signed out, and says so in the log', async () => {
    const secrets = new MemorySecretStore();
    secrets.get = async () => {
      throw new Error('no keyring available');
    };
    const sink = new RecordingSink();
    const log = new Logger(sink);
    const store = new SessionStore(new Keychain(secrets, log), log);
    assert.equal(await store.get(REGISTRY), undefined);
    assert.ok(sink.lines.some((l) => l.startsWith('error') && l.includes('no keyring available')));
  });
});
