import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { parseForms, submitConsent, submitLogin } from '../helpers/form.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient } from '../helpers/oauth.ts';

// The pages a person signs in and consents on: CSRF, browser binding,
// throttling, prompt, long passwords, deactivated accounts, oversized input.

const LONG = `${'p'.repeat(72)}`; // exactly bcrypt's 72 bytes
let f: Fixture;
let base: string;
let clientId: string;

before(async () => {
  f = await startFixture(
    (config) => {
      config.oauth_server.builtin.users.push({ username: 'carol', password_env: 'CAROL_PASSWORD', scopes: ['mcp:read'] }, { username: 'dave', password_env: 'DAVE_PASSWORD', scopes: ['mcp:read'] });
    },
    { CAROL_PASSWORD: LONG, DAVE_PASSWORD: 'dave-password-1234' },
  );
  base = f.registry.url;
  clientId = (await registerClient(base)).client_id;
});
after(() => f.close());

const authorize = (extra: Record<string, string> = {}) =>
  authorizeUrl(base, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 'st', ...extra });

async function loginPage(headers: Record<string, string> = {}) {
  const res = await fetch(authorize(), { headers });
  const html = await res.text();
  return { res, form: parseForms(html, res.url)[0]!, cookie: res.headers.get('set-cookie')?.split(';')[0] };
}

describe('login form', () => {
  test('a login post without the CSRF token, or with another one, is refused', async () => {
    const { form } = await loginPage();
    for (const csrf of [undefined, 'x'.repeat(32)]) {
      const body = new URLSearchParams({ username: ALICE.username, password: ALICE.password, ...(csrf && { csrf }) });
      const res = await fetch(form.action, { method: 'POST', body, redirect: 'manual' });
      assert.equal(res.status, 403);
      assert.match(await res.text(), /out of date or was not sent by this sign-in page/);
    }
  });

  test("a login started in one browser cannot be finished from another (the binding cookie differs, or a bound one is missing)", async () => {
    const { form, cookie } = await loginPage({ cookie: 'unrelated=1' });
    assert.ok(cookie?.startsWith('kg_ia='));
    const body = new URLSearchParams([...form.fields, ['username', ALICE.username], ['password', ALICE.password]]);
    const other = await fetch(form.action, { method: 'POST', body, redirect: 'manual', headers: { cookie: 'kg_ia=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    assert.equal(other.status, 403);
    assert.match(await other.text(), /started in another browser/);
    const crossSite = await fetch(form.action, { method: 'POST', body, redirect: 'manual' });
    assert.equal(crossSite.status, 403, 'the browser had cookies when it started; a post without them is cross-site');
    const same = await fetch(form.action, { method: 'POST', body, redirect: 'manual', headers: { cookie: `unrelated=1; ${cookie}` } });
    assert.equal(same.status, 200, 'the same browser goes on to the consent page');
  });

  test('an expired or unknown interaction is an error page', async () => {
    const res = await fetch(`${base}/oauth/interaction/${'A'.repeat(32)}/login`, { method: 'POST', body: new URLSearchParams({ csrf: 'x', username: 'a', password: 'b' }) });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /expired/);
  });

  test('a password longer than 72 bytes is refused even when its first 72 bytes are right (bcrypt truncation)', async () => {
    const right = await submitLogin(authorize(), 'carol', LONG);
    assert.equal(right.status, 200);
    const longer = await submitLogin(authorize(), 'carol', `${LONG}and-more`);
    assert.equal(longer.status, 401);
  });

  test('a password_env longer than 72 bytes stops start-up', async () => {
    await assert.rejects(
      startFixture((config) => config.oauth_server.builtin.users.push({ username: 'erin', password_env: 'ERIN' }), { ERIN: 'x'.repeat(73) }),
      /longer than bcrypt's 72 bytes/,
    );
  });

  test('after 5 failures from one address a user is throttled (429, Retry-After), even with the right password; others are not', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await submitLogin(authorize(), 'dave', `wrong-${i}`)).status, 401);
    const throttled = await submitLogin(authorize(), 'dave', 'dave-password-1234');
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get('retry-after')) > 0);
    assert.match(await throttled.text(), /Too many failed sign-ins/);
    assert.equal((await submitLogin(authorize(), BOB.username, BOB.password)).status, 200, 'another user signs in');
  });

  test('an unknown username is throttled exactly like a real one (no enumeration)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await submitLogin(authorize(), 'nobody-here', 'x')).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  });

  test('oversized and malformed form bodies are refused without a crash', async () => {
    const { form } = await loginPage();
    const huge = await fetch(form.action, { method: 'POST', body: new URLSearchParams([...form.fields, ['username', 'a'], ['password', 'x'.repeat(20_000)]]) });
    assert.equal(huge.status, 413);
    const tooLong = await fetch(form.action, { method: 'POST', body: new URLSearchParams([...form.fields, ['username', 'a'], ['password', 'x'.repeat(2000)]]) });
    assert.equal(tooLong.status, 400);
    const hugeQuery = await fetch(authorize({ state: 'x'.repeat(100_000) }));
    assert.ok(hugeQuery.status === 431 || hugeQuery.status === 414 || hugeQuery.status === 400, `status ${hugeQuery.status}`);
  });
});

describe('consent', () => {
  test('a consent post without the CSRF token is refused; deny goes back as access_denied', async () => {
    const page = await submitLogin(authorize(), ALICE.username, ALICE.password);
    const html = await page.text();
    const form = parseForms(html, page.url)[0]!;
    assert.deepEqual(form.buttons.map((b) => b.value).sort(), ['approve', 'deny']);
    const forged = await fetch(form.action, { method: 'POST', body: new URLSearchParams({ action: 'approve' }), redirect: 'manual' });
    assert.equal(forged.status, 403);
    const denied = await fetch(form.action, { method: 'POST', body: new URLSearchParams([...form.fields, ['action', 'deny']]), redirect: 'manual' });
    const location = new URL(denied.headers.get('location')!);
    assert.equal(location.searchParams.get('error'), 'access_denied');
    assert.equal(location.searchParams.get('state'), 'st');
    assert.equal(location.searchParams.get('code'), null);
  });

  test('a finished interaction cannot be used again', async () => {
    const page = await submitLogin(authorize(), ALICE.username, ALICE.password);
    const form = parseForms(await page.text(), page.url)[0]!;
    const body = new URLSearchParams([...form.fields, ['action', 'approve']]);
    const first = await fetch(form.action, { method: 'POST', body, redirect: 'manual' });
    assert.equal(first.status, 303);
    const again = await fetch(form.action, { method: 'POST', body, redirect: 'manual' });
    assert.equal(again.status, 400);
    assert.equal(again.headers.get('location'), null);
  });

  test('approved once, a client is not asked again for the same or less; asking for more shows the page again', async () => {
    const fresh = (await registerClient(base)).client_id;
    const ask = (scope: string) => authorizeUrl(base, { response_type: 'code', client_id: fresh, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', scope });
    const first = await submitLogin(ask('mcp:read'), ALICE.username, ALICE.password);
    assert.equal(first.status, 200);
    assert.equal((await submitConsent(first, 'approve')).status, 303);
    assert.equal((await submitLogin(ask('mcp:read'), ALICE.username, ALICE.password)).status, 303, 'no consent page');
    const forced = authorizeUrl(base, { response_type: 'code', client_id: fresh, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', scope: 'mcp:read', prompt: 'consent' });
    assert.equal((await submitLogin(forced, ALICE.username, ALICE.password)).status, 200, 'prompt=consent shows the page anyway');
    const more = await submitLogin(ask('mcp:read mcp:write'), ALICE.username, ALICE.password);
    assert.equal(more.status, 200, 'consent page again');
    assert.match(await more.text(), /Call tools on the MCP servers you can reach/);
  });

  test('prompt=none without a signed-in browser is login_required; none with another value is invalid_request', async () => {
    const none = await fetch(authorize({ prompt: 'none' }), { redirect: 'manual' });
    assert.equal(new URL(none.headers.get('location')!).searchParams.get('error'), 'login_required');
    const bad = await fetch(authorize({ prompt: 'none login' }), { redirect: 'manual' });
    assert.equal(new URL(bad.headers.get('location')!).searchParams.get('error'), 'invalid_request');
  });

  test('a deactivated account cannot sign in, and its refresh tokens stop working', async () => {
    const { signIn, tokenRequest } = await import('../helpers/oauth.ts');
    const session = await signIn(base, BOB);
    await f.registry.store.update('accounts', 'bob', (current) => ({ ...(current as object), disabled: true }));
    try {
      const res = await submitLogin(authorize(), BOB.username, BOB.password);
      assert.equal(res.status, 303);
      assert.equal(new URL(res.headers.get('location')!).searchParams.get('error'), 'access_denied');
      const refresh = await tokenRequest(base, { grant_type: 'refresh_token', client_id: session.clientId, refresh_token: session.tokens.refresh_token });
      assert.equal(refresh.status, 400);
      assert.match(((await refresh.json()) as { error_description: string }).error_description, /deactivated/);
    } finally {
      await f.registry.store.update('accounts', 'bob', (current) => ({ ...(current as object), disabled: false }));
    }
  });
});
