import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SessionsChange } from '../../extension/auth/provider.ts';
import { signIn } from '../../extension/auth/sign-in.ts';
import { SignInCancelledError, SignInTimeoutError } from '../../extension/errors.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authHarness } from './extension-fakes.ts';

// The `keygate` authentication provider as VS Code drives it, with only VS
// Code faked: sign-in through the registry's real login page.

const summary = (e: SessionsChange) => ({
  added: e.added?.map((s) => s.account.id) ?? [],
  removed: e.removed?.map((s) => s.account.id) ?? [],
  changed: e.changed?.map((s) => s.account.id) ?? [],
});

describe('extension authentication provider', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  function harness(person = ALICE) {
    const h = authHarness(f.registry.url, person);
    const events: SessionsChange[] = [];
    let accountChanges = 0;
    h.auth.onDidChangeSessions((e) => events.push(e));
    h.auth.onDidChangeAccount(() => accountChanges++);
    return { h, events, accountChanges: () => accountChanges };
  }

  test('sign-in creates a session, stores it and fires "added"; getSessions returns it', async () => {
    const { h, events, accountChanges } = harness();
    assert.deepEqual(await h.auth.getSessions([]), []);
    const session = await h.auth.createSession(['mcp:read']);
    assert.equal(session.account.id, 'alice');
    assert.deepEqual(events.map(summary), [{ added: ['alice'], removed: [], changed: [] }]);
    assert.equal(accountChanges(), 1);
    assert.deepEqual(await h.auth.getSessions(undefined), [session]);
    assert.equal((await h.store.get(f.registry.url))?.accessToken, session.accessToken);
    assert.equal(events.length, 1, 'reading the session announces nothing');
  });

  test('two concurrent sign-ins share one browser round trip', async () => {
    const { h } = harness();
    const [a, b] = await Promise.all([h.auth.createSession([]), h.auth.createSession([])]);
    assert.equal(a.id, b.id);
    assert.equal(h.ui.opened.length, 1);
  });

  test('a refresh fires "changed" for the same session id, not an account change', async () => {
    const { h, events, accountChanges } = harness();
    const session = await h.auth.createSession([]);
    const stored = (await h.store.get(f.registry.url))!;
    h.clock.ms = stored.expiresAt! - 10_000;
    const [fresh] = await h.auth.getSessions([]);
    assert.equal(fresh!.id, session.id);
    assert.notEqual(fresh!.accessToken, session.accessToken);
    assert.deepEqual(events.map(summary), [
      { added: ['alice'], removed: [], changed: [] },
      { added: [], removed: [], changed: ['alice'] },
    ]);
    assert.equal(accountChanges(), 1);
  });

  test('sign-out removes the session and fires "removed"', async () => {
    const { h, events, accountChanges } = harness();
    const session = await h.auth.createSession([]);
    await h.auth.removeSession('some-other-id');
    assert.equal(events.length, 1, 'an unknown session id changes nothing');
    await h.auth.removeSession(session.id);
    assert.equal(await h.store.get(f.registry.url), undefined);
    assert.deepEqual(events.map(summary).at(-1), { added: [], removed: ['alice'], changed: [] });
    assert.equal(accountChanges(), 2);
    assert.deepEqual(await h.auth.getSessions([]), []);
  });

  test('a sign-in or sign-out in another window (shared storage) is announced here', async () => {
    const { h, events } = harness();
    const other = authHarness(f.registry.url, ALICE);
    const session = await signIn({ flow: other.flow, registryClient: other.registryClient, callbacks: other.callbacks, ui: other.ui, log: other.log });
    await h.secrets.store(`keygate:session:${f.registry.url}`, JSON.stringify(session)); // the other window writes
    await h.auth.sync();
    assert.deepEqual(events.map(summary), [{ added: ['alice'], removed: [], changed: [] }]);
    await h.secrets.delete(`keygate:session:${f.registry.url}`);
    await h.auth.sync();
    assert.deepEqual(events.map(summary).at(-1), { added: [], removed: ['alice'], changed: [] });
  });

  test('changing the registry signs out of the previous one', async () => {
    const { h, events } = harness();
    await h.auth.createSession([]);
    h.setRegistry('https://another-registry.example');
    await h.auth.registryChanged(f.registry.url);
    assert.equal(await h.store.get(f.registry.url), undefined, 'the old registry session is gone from storage');
    assert.deepEqual(events.map(summary).at(-1), { added: [], removed: ['alice'], changed: [] });
    assert.deepEqual(await h.auth.getSessions([]), []);
  });

  test('cancelling the progress notification ends the sign-in; nothing is stored', async () => {
    const h = authHarness(f.registry.url, undefined); // the person never completes the login
    const pending = h.auth.createSession([]);
    while (h.ui.opened.length === 0) await new Promise((r) => setTimeout(r, 5));
    h.ui.cancel!();
    await assert.rejects(pending, (err: unknown) => err instanceof SignInCancelledError && err.code === 'ERR_SIGN_IN_CANCELLED');
    assert.equal(h.callbacks.pending, 0, 'no sign-in is left waiting for a redirect');
    assert.equal(await h.store.get(f.registry.url), undefined);
  });

  test('a sign-in nobody completes times out', async () => {
    const h = authHarness(f.registry.url, undefined);
    await assert.rejects(
      signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log, timeoutMs: 50 }),
      (err: unknown) => err instanceof SignInTimeoutError && err.code === 'ERR_SIGN_IN_TIMEOUT',
    );
    assert.equal(h.callbacks.pending, 0);
  });

  test('without a usable registry URL there are no sessions and sign-in says why', async () => {
    const { h } = harness();
    h.setRegistry(undefined);
    assert.deepEqual(await h.auth.getSessions([]), []);
    await assert.rejects(h.auth.createSession([]), /keygate\.registryUrl/);
  });
});
