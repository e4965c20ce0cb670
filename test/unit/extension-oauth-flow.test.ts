import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CLIENT_ID, OAuthFlow, type PendingAuthorization } from '../../extension/auth/oauth-flow.ts';
import { signIn } from '../../extension/auth/sign-in.ts';
import { AuthorizationDeniedError, DiscoveryError, IssuerMismatchError, RegistryHttpError, RegistryUnreachableError, StateMismatchError, TokenRequestError } from '../../extension/errors.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeWithLogin } from '../helpers/form.ts';
import { authHarness, codeServerRedirect, recordingFetch, VSCODE_REDIRECT } from './extension-fakes.ts';

// The extension's OAuth 2.1 client against a real registry on port 0, in the
// order the flow runs: discovery, authorization request, redirect checks,
// code redemption, refresh.

describe('extension OAuth flow against the registry', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  test('discovery reads the registry metadata (RFC 8414) over http on loopback', async () => {
    const flow = new OAuthFlow({ registry: f.registry.url });
    const as = await flow.discover();
    assert.equal(as.issuer, f.registry.url);
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(OAuthFlow.scopesFor(as), ['mcp:read', 'mcp:write', 'offline_access']);
  });

  test('discovery of something that is not a registry fails with a coded error', async () => {
    const flow = new OAuthFlow({ registry: `${f.registry.url}/nothing-here` });
    await assert.rejects(flow.discover(), (err: unknown) => err instanceof DiscoveryError && err.code === 'ERR_DISCOVERY_FAILED');
  });

  test('the authorization request carries PKCE S256, state, the client, the resource and the scopes', async () => {
    const flow = new OAuthFlow({ registry: f.registry.url });
    const { url, pending } = await flow.authorizationRequest(VSCODE_REDIRECT);
    const q = new URL(url).searchParams;
    assert.equal(new URL(url).origin + new URL(url).pathname, `${f.registry.url}/oauth/authorize`);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('redirect_uri'), VSCODE_REDIRECT);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(q.get('code_challenge'), pending.codeVerifier);
    assert.equal(q.get('state'), pending.state);
    assert.equal(q.get('resource'), f.registry.url, 'RFC 8707: the registry base, no trailing slash');
    assert.equal(q.get('scope'), 'mcp:read mcp:write offline_access');
  });

  for (const [shape, redirect] of [
    ['desktop (vscode://)', () => VSCODE_REDIRECT],
    ['code-server (/callback?vscode-*)', () => codeServerRedirect(8080)],
  ] as const) {
    test(`sign-in end to end with a ${shape} redirect produces a session`, async () => {
      const h = authHarness(f.registry.url, ALICE, { redirect: redirect() });
      const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });

      // The registry kept the redirect URI's own query and appended code, state and iss.
      const back = h.ui.redirects[0]!;
      if (redirect().includes('?')) assert.equal(back.get('vscode-authority'), 'keygate.keygate');
      assert.equal(back.get('iss'), f.registry.url);

      assert.equal(session.registry, f.registry.url);
      assert.deepEqual(session.account, { id: 'alice', label: 'alice@example.com' });
      assert.deepEqual(session.scopes, ['mcp:read', 'mcp:write', 'offline_access']);
      assert.ok(session.refreshToken, 'offline_access gave a refresh token');
      assert.ok(session.expiresAt! > h.clock.ms);

      // The code grant sent the redirect URI byte for byte, the verifier and the resource.
      const grant = h.tokenRequests.find((r) => r.grantType === 'authorization_code')!;
      assert.equal(grant.params.get('redirect_uri'), redirect());
      assert.equal(grant.params.get('client_id'), CLIENT_ID);
      assert.equal(grant.params.get('resource'), f.registry.url);
      assert.match(grant.params.get('code_verifier')!, /^[A-Za-z0-9_-]{43,128}$/);

      // The token works on the API and is audience-bound to the registry base.
      const me = await new RegistryClient(f.registry.url).me(session.accessToken);
      assert.equal(me.authenticated && me.subject, 'alice');
      assert.equal(h.callbacks.pending, 0);
    });
  }

  test('a registry that does not answer: sign-in stops before any browser opens, naming the registry, even with its metadata cached', async () => {
    const own = await startFixture();
    try {
      const h = authHarness(own.registry.url, ALICE);
      await h.flow.discover();
      await own.registry.stop();
      await assert.rejects(
        signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log }),
        (err: unknown) => err instanceof RegistryUnreachableError && err.message.startsWith(`${own.registry.url} does not answer (`) && /ECONNREFUSED/.test(err.message),
      );
      assert.deepEqual(h.ui.opened, [], 'no browser tab on a page that cannot load');
      assert.equal(h.callbacks.pending, 0, 'nothing left waiting for a redirect');
      // Back up: the same harness signs in.
      await own.registry.start();
      const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
      assert.equal(session.account.id, 'alice');
    } finally {
      await own.close();
    }
  });

  test('a registry that answers /healthz with 503 (its store unreadable): sign-in stops with the status, before the browser', async () => {
    // A stand-in for a registry whose store is down: only /healthz matters here.
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? 503 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'store_unavailable' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const h = authHarness(url, ALICE);
      await assert.rejects(
        signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log }),
        (err: unknown) => err instanceof RegistryHttpError && err.status === 503 && err.message === `${url} is not healthy (GET /healthz: HTTP 503)`,
      );
      assert.deepEqual(h.ui.opened, []);
    } finally {
      server.close();
    }
  });

  test('a user holding fewer scopes gets a session with just those', async () => {
    const h = authHarness(f.registry.url, BOB);
    const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
    assert.deepEqual(session.scopes, ['mcp:read', 'offline_access']);
    assert.equal(session.account.label, 'bob');
  });

  describe('the redirect is checked before the code is redeemed', () => {
    // Sign in on the real login page and keep the genuine redirect parameters.
    async function authorize(): Promise<{ flow: OAuthFlow; pending: PendingAuthorization; params: URLSearchParams; tokenRequests: { grantType: string | null }[] }> {
      const { fetch, tokenRequests } = recordingFetch();
      const flow = new OAuthFlow({ registry: f.registry.url, fetch });
      const { url, pending } = await flow.authorizationRequest(VSCODE_REDIRECT);
      const params = await authorizeWithLogin(url, ALICE.username, ALICE.password);
      return { flow, pending, params, tokenRequests };
    }
    const tampered = (params: URLSearchParams, name: string, value: string | undefined) => {
      const copy = new URLSearchParams(params);
      if (value === undefined) copy.delete(name);
      else copy.set(name, value);
      return copy;
    };

    const cases = [
      { name: 'iss from another authorization server is rejected (RFC 9207)', param: 'iss', value: 'https://evil.example', error: IssuerMismatchError, code: 'ERR_ISSUER_MISMATCH' },
      { name: 'a missing iss is rejected, the registry advertises it (RFC 9207)', param: 'iss', value: undefined, error: IssuerMismatchError, code: 'ERR_ISSUER_MISMATCH' },
      { name: 'a state from another sign-in is rejected (RFC 6749 §10.12)', param: 'state', value: 'not-the-state-we-sent', error: StateMismatchError, code: 'ERR_STATE_MISMATCH' },
      { name: 'a missing state is rejected', param: 'state', value: undefined, error: StateMismatchError, code: 'ERR_STATE_MISMATCH' },
    ] as const;
    for (const c of cases) {
      test(c.name, async () => {
        const { flow, pending, params, tokenRequests } = await authorize();
        await assert.rejects(flow.authorizationCodeGrant(pending, tampered(params, c.param, c.value)), (err: unknown) => err instanceof c.error && err.code === c.code);
        assert.equal(tokenRequests.length, 0, 'the code was never sent to the token endpoint');
        // The genuine redirect still redeems: the rejection happened in the extension.
        const tokens = await flow.authorizationCodeGrant(pending, params);
        assert.ok(tokens.accessToken);
      });
    }

    test('an error redirect becomes AuthorizationDeniedError with the registry error code', async () => {
      const { fetch, tokenRequests } = recordingFetch();
      const flow = new OAuthFlow({ registry: f.registry.url, fetch });
      const { pending } = await flow.authorizationRequest(VSCODE_REDIRECT);
      const params = new URLSearchParams({ error: 'access_denied', error_description: 'the user said no', state: pending.state, iss: f.registry.url });
      await assert.rejects(flow.authorizationCodeGrant(pending, params), (err: unknown) => err instanceof AuthorizationDeniedError && err.error === 'access_denied');
      assert.equal(tokenRequests.length, 0);
    });

    test('a code redeemed with another verifier fails at the registry (PKCE)', async () => {
      const { flow, pending, params } = await authorize();
      const wrong = { ...pending, codeVerifier: 'x'.repeat(43) };
      await assert.rejects(flow.authorizationCodeGrant(wrong, params), (err: unknown) => err instanceof TokenRequestError && err.error === 'invalid_grant');
    });
  });

  test('refresh rotates the refresh token and keeps the resource', async () => {
    const h = authHarness(f.registry.url, ALICE);
    const session = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
    const next = await h.flow.refreshTokenGrant(session.refreshToken!, session.scopes);
    assert.notEqual(next.refreshToken, session.refreshToken);
    assert.notEqual(next.accessToken, session.accessToken);
    const refresh = h.tokenRequests.find((r) => r.grantType === 'refresh_token')!;
    assert.equal(refresh.params.get('resource'), f.registry.url);
    assert.equal(refresh.params.get('client_id'), CLIENT_ID);
  });

  test('the scope asked for is trimmed to what the registry supports', async () => {
    const narrow = await startFixture((config) => {
      config.oauth_server.scopes_supported = ['mcp:read'];
    });
    try {
      const flow = new OAuthFlow({ registry: narrow.registry.url });
      const { url } = await flow.authorizationRequest(VSCODE_REDIRECT);
      assert.equal(new URL(url).searchParams.get('scope'), 'mcp:read offline_access');
    } finally {
      await narrow.close();
    }
  });
});
