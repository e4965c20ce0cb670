import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { federatedTokens, IDP_CLIENT_ID, IDP_CLIENT_SECRET, signInThroughIdp, startFederatedRegistry, type FederatedRegistry } from '../helpers/federated.ts';
import { startGitHubStandIn, type GitHubStandIn } from '../helpers/github-standin.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient } from '../helpers/oauth.ts';

// provider: github (plain OAuth 2: no ID token; the person comes from the
// user API, /user and /user/emails) against a stand-in for GitHub Enterprise
// Server at its own URL (github.server_url), since github.com cannot be
// reached here.

const octocat = { id: 583231, login: 'octocat', password: 'octo-pw', name: 'The Octocat', emails: [{ email: 'octocat@example.com', primary: true, verified: true }] };
const hubot = { id: 1000, login: 'hubot', password: 'hubot-pw', name: null, emails: [{ email: 'hubot@example.com', primary: true, verified: false }, { email: 'hubot@elsewhere.example', primary: false, verified: true }] };
const outsider = { id: 2000, login: 'outsider', password: 'out-pw', name: 'Out Sider', emails: [{ email: 'outsider@elsewhere.example', primary: true, verified: true }] };
const monalisa = { id: 3000, login: 'monalisa', password: 'mona-pw', name: 'Mona Lisa', emails: [{ email: 'mona@example.com', primary: true, verified: true }] };

let gh: GitHubStandIn;
let f: FederatedRegistry;
let base: string;

before(async () => {
  gh = await startGitHubStandIn([octocat, hubot, outsider, monalisa]);
  gh.clientId = IDP_CLIENT_ID;
  gh.clientSecret = IDP_CLIENT_SECRET;
  f = await startFederatedRegistry({ provider: 'github', github: { server_url: gh.url }, allowed_domains: ['example.com'], admin_users: ['OctoCat'], admin_scopes: ['mcp:read', 'mcp:write'] });
  base = f.registry.url;
  gh.callbackUrl = `${base}/oauth/callback`;
});
after(async () => {
  await f?.close();
  await gh?.close();
});

const login = (u: { login: string; password: string }) => ({ login: u.login, password: u.password });

async function start() {
  const { client_id } = await registerClient(base);
  return authorizeUrl(base, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 'st' });
}

function expectAccessDenied(landed: URL | undefined, description: RegExp) {
  assert.ok(landed, 'the browser went back to the client');
  assert.equal(landed.searchParams.get('error'), 'access_denied');
  assert.match(landed.searchParams.get('error_description')!, description);
}

describe('GitHub (plain OAuth 2 and its user API)', () => {
  test('the browser goes to GitHub\'s authorize page with the preset\'s scopes, PKCE and state, and no nonce', async () => {
    const res = await fetch(await start(), { redirect: 'manual' });
    const to = new URL(res.headers.get('location')!);
    assert.equal(`${to.origin}${to.pathname}`, `${gh.url}/login/oauth/authorize`);
    assert.equal(to.searchParams.get('scope'), 'read:user user:email');
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(to.searchParams.get('nonce'), null, 'no OpenID Connect here');
    assert.equal(to.searchParams.get('redirect_uri'), `${base}/oauth/callback`);
  });

  test('a person signs in; the account is read from /user and /user/emails, keyed by GitHub\'s numeric id', async () => {
    const before = gh.seen.length;
    const { tokens } = await federatedTokens(base, login(monalisa));
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.sub, 'github:3000');
    assert.equal(claims.email, 'mona@example.com');
    assert.equal(claims.name, 'Mona Lisa');
    assert.equal(tokens.scope, 'mcp:read mcp:write', 'default_scopes, by default: reading and calling tools');
    assert.deepEqual(gh.seen.slice(before).filter((s) => s.includes('/api/v3/')), ['GET /api/v3/user', 'GET /api/v3/user/emails']);
    const account = (await f.registry.store.find('accounts', 'github:3000')) as { username: string; provider: string };
    assert.equal(account.username, 'monalisa');
    assert.equal(account.provider, 'github');
  });

  test('an admin listed by GitHub login (any case) gets admin_scopes', async () => {
    const { tokens } = await federatedTokens(base, login(octocat));
    assert.deepEqual(tokens.scope.split(' ').sort(), ['mcp:read', 'mcp:write']);
  });

  test('an unverified primary email is not a verified address of an allowed domain', async () => {
    expectAccessDenied((await signInThroughIdp(await start(), login(hubot))).landed, /needs a verified email address of example\.com/);
  });

  test('a verified email outside allowed_domains is refused', async () => {
    expectAccessDenied((await signInThroughIdp(await start(), login(outsider))).landed, /limited to accounts of example\.com/);
  });

  test('cancelling on GitHub goes back to the client as access_denied', async () => {
    expectAccessDenied((await signInThroughIdp(await start(), 'cancel')).landed, /The user has denied your application access/);
  });

  test('a GitHub error other than access_denied (redirect_uri_mismatch) is an error page naming it', async () => {
    const registered = gh.callbackUrl;
    gh.callbackUrl = `${base}/oauth/callback?registered=elsewhere`;
    try {
      const result = await signInThroughIdp(await start(), login(octocat));
      assert.equal(result.page?.status, 502);
      assert.match(result.page!.html, /The identity provider refused the sign-in/);
      assert.match(result.page!.html, /redirect_uri_mismatch/);
    } finally {
      gh.callbackUrl = registered;
    }
  });

  test('a token endpoint that refuses the registry\'s credentials (an error in a 200 body) is an error page', async () => {
    gh.clientSecret = 'rotated-at-github';
    try {
      const result = await signInThroughIdp(await start(), login(octocat));
      assert.equal(result.page?.status, 502);
      assert.match(result.page!.html, /did not accept the sign-in/);
      assert.match(result.page!.html, /incorrect_client_credentials/);
      assert.ok(!f.registry.log.lines.join('\n').includes(IDP_CLIENT_SECRET), 'the client secret is not logged');
    } finally {
      gh.clientSecret = IDP_CLIENT_SECRET;
    }
  });

  test('a failing user API is an error page, and nobody is signed in', async () => {
    gh.userApiStatus = 503;
    try {
      const result = await signInThroughIdp(await start(), login(octocat));
      assert.equal(result.page?.status, 502);
      assert.match(result.page!.html, /Your account could not be read/);
      assert.match(result.page!.html, /GitHub&#39;s \/user API answered HTTP 503/);
    } finally {
      gh.userApiStatus = undefined;
    }
  });
});
