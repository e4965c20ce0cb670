import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { REFRESH_JITTER_MS, REFRESH_MARGIN_MS, Refresher } from '../../extension/auth/refresher.ts';
import { signIn } from '../../extension/auth/sign-in.ts';
import { SessionExpiredError, TokenRequestError } from '../../extension/errors.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authHarness } from './extension-fakes.ts';

// Refresh before expiry, once, however many callers ask at the same moment:
// the registry rotates refresh tokens and revokes the whole family when a
// rotated one is presented again.

describe('extension token refresh against the registry', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  async function signedIn() {
    const h = authHarness(f.registry.url, ALICE);
    const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
    await h.store.set(session);
    const refreshes = () => h.tokenRequests.filter((r) => r.grantType === 'refresh_token');
    return { h, session, refreshes };
  }

  test('a token with more than a minute left is used as is; within the last minute it is refreshed', async () => {
    const { h, session, refreshes } = await signedIn();
    h.clock.ms = session.expiresAt! - REFRESH_MARGIN_MS - 1_000;
    assert.equal((await h.refresher.fresh(f.registry.url))!.accessToken, session.accessToken);
    assert.equal(refreshes().length, 0);

    h.clock.ms = session.expiresAt! - REFRESH_MARGIN_MS + 1_000;
    const fresh = (await h.refresher.fresh(f.registry.url))!;
    assert.notEqual(fresh.accessToken, session.accessToken);
    assert.equal(fresh.id, session.id, 'a refresh keeps the session id');
    assert.equal(refreshes().length, 1);
    assert.deepEqual(await h.store.get(f.registry.url), fresh, 'the refreshed tokens were stored');
  });

  test('by default each window refreshes at its own moment between 60 and 90 seconds before expiry', async () => {
    const { h, session } = await signedIn();
    const margins = new Set<boolean>();
    for (let i = 0; i < 20; i++) {
      const clock = { ms: 0 };
      const refresher = new Refresher({ store: h.store, refresh: () => Promise.reject(new Error('unused')), log: h.log, now: () => clock.ms });
      clock.ms = session.expiresAt! - REFRESH_MARGIN_MS - REFRESH_JITTER_MS - 1;
      assert.equal(refresher.needsRefresh(session), false);
      clock.ms = session.expiresAt! - REFRESH_MARGIN_MS + 1;
      assert.equal(refresher.needsRefresh(session), true);
      clock.ms = session.expiresAt! - REFRESH_MARGIN_MS - REFRESH_JITTER_MS / 2;
      margins.add(refresher.needsRefresh(session));
    }
    assert.equal(margins.size, 2, 'the windows did not all pick the same moment');
  });

  test('N concurrent callers cause exactly one refresh request, and the family stays alive', async () => {
    const { h, session, refreshes } = await signedIn();
    h.clock.ms = session.expiresAt! - 30_000;

    const results = await Promise.all(Array.from({ length: 12 }, () => h.refresher.fresh(f.registry.url)));
    assert.equal(refreshes().length, 1, 'one refresh request for twelve callers');
    assert.equal(refreshes()[0]!.params.get('refresh_token'), session.refreshToken, 'the one request used the original refresh token');
    const tokens = new Set(results.map((s) => s!.accessToken));
    assert.equal(tokens.size, 1, 'every caller got the same new access token');
    assert.ok(!tokens.has(session.accessToken));

    // Had the rotated token been presented twice, the registry would have revoked
    // the family; the next refresh with the newest token succeeding proves it was not.
    const rotated = (await h.store.get(f.registry.url))!;
    assert.notEqual(rotated.refreshToken, session.refreshToken);
    h.clock.ms = rotated.expiresAt! - 30_000;
    const again = (await h.refresher.fresh(f.registry.url))!;
    assert.equal(refreshes().length, 2);
    assert.equal(refreshes()[1]!.params.get('refresh_token'), rotated.refreshToken);
    assert.notEqual(again.accessToken, rotated.accessToken);

    // Control: the registry really punishes reuse. Presenting the first refresh
    // token again fails, and takes the newest one down with it.
    await assert.rejects(h.flow.refreshTokenGrant(session.refreshToken!, session.scopes), (err: unknown) => err instanceof TokenRequestError && err.error === 'invalid_grant');
    await assert.rejects(h.flow.refreshTokenGrant(again.refreshToken!, again.scopes), (err: unknown) => err instanceof TokenRequestError && err.error === 'invalid_grant');
  });

  test('a rejected refresh token ends the session: SessionExpiredError, nothing left stored', async () => {
    const { h, session } = await signedIn();
    // Use the refresh token behind the extension's back: the stored one is now a rotated one.
    await h.flow.refreshTokenGrant(session.refreshToken!, session.scopes);
    h.clock.ms = session.expiresAt! - 1_000;
    const calls = await Promise.allSettled([h.refresher.fresh(f.registry.url), h.refresher.fresh(f.registry.url)]);
    for (const c of calls) assert.ok(c.status === 'rejected' && c.reason instanceof SessionExpiredError && c.reason.code === 'ERR_SESSION_EXPIRED');
    assert.equal(await h.store.get(f.registry.url), undefined);
    assert.equal(await h.refresher.fresh(f.registry.url), undefined);
  });

  test('replace() refreshes a token the registry rejected, once, not again for a token already replaced', async () => {
    const { h, session, refreshes } = await signedIn();
    const [a, b] = await Promise.all([h.refresher.replace(f.registry.url, session.accessToken), h.refresher.replace(f.registry.url, session.accessToken)]);
    assert.equal(refreshes().length, 1);
    assert.equal(a!.accessToken, b!.accessToken);
    // A late caller still holding the old token finds it already replaced.
    const late = await h.refresher.replace(f.registry.url, session.accessToken);
    assert.equal(late!.accessToken, a!.accessToken);
    assert.equal(refreshes().length, 1);
  });

  test('a network failure keeps the session and reports the error', async () => {
    const { session } = await signedIn();
    // Nothing listens on port 9: the registry is unreachable.
    const stored = { ...session, registry: 'http://127.0.0.1:9' };
    const offline = authHarness('http://127.0.0.1:9', ALICE);
    await offline.store.set(stored);
    offline.clock.ms = session.expiresAt! - 1_000;
    await assert.rejects(offline.refresher.fresh('http://127.0.0.1:9'), (err: unknown) => !(err instanceof SessionExpiredError));
    assert.deepEqual(await offline.store.get('http://127.0.0.1:9'), stored);
  });
});
