import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { type Era, newClient } from '../helpers/mcp-oauth.ts';
import { signIn } from '../helpers/oauth.ts';
import { startOAuthUpstream } from '../helpers/oauth-upstream.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// Issue 11: the upstream OAuth refresh is single-flight across instances.
// Two registry processes on one PostgreSQL (test/helpers/cluster.ts); alice's
// Linear identity is an OAuth token set from a real oidc-provider that
// rotates refresh tokens and refuses a reused one (spending one twice would
// fail a call, and revoke the grant). The token endpoint is reached through a
// small front the test can take down. The access token is made "expiring"
// from outside: the authorization server's answers say expires_in 30 (the
// registry refreshes 60 s before expiry), so the next call refreshes.

const CALLS = 20;
const LINEAR_SECRET = `s-${randomBytes(12).toString('hex')}`;

let pg: TestPostgres;
let idp: TestIdp;
let linear: Awaited<ReturnType<typeof startOAuthUpstream>>;
let cluster: Cluster;
let front: Server;
/** The authorization server's token endpoint is down (the front answers 503). */
let down = false;
let aliceToken: string;
/** grant_type of every token request the IdP answered, in order, and those it refused. */
const grants: string[] = [];
const refused: string[] = [];
const clients: { client: Client; tool: string; instance: number }[] = [];

/** The token endpoint, through a front that forwards to the IdP, or answers 503 while `down`. */
async function startFront(target: string): Promise<string> {
  front = createServer((req, res) => {
    if (down) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('the authorization server is down');
    const to = new URL(target);
    const out = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
}

/** Token responses say expires_in `seconds`, after `delayMs` (so concurrent calls arrive while a refresh is in flight). */
function answerTokensWith(seconds: number, delayMs = 0): void {
  idp.onTokenResponse = async (body) => {
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return { ...body, expires_in: seconds };
  };
}

/** Alice connects Linear on the registry's connect pages (through the proxy), signing in at Linear's authorization server. */
async function connectLinear(): Promise<void> {
  const ua = new UserAgent();
  let step = await ua.follow(`${cluster.url}/connect/team/linear`);
  for (let i = 0; i < 3 && step.response; i++) {
    const html = await step.response.clone().text();
    if (!/name="password"/.test(html) || !step.url.pathname.startsWith('/oauth/')) break;
    step = await ua.follow(step.url, () => false, await ua.submit({ html, url: step.url }, { username: ALICE.username, password: ALICE.password }));
  }
  const started = await ua.submit({ html: await step.response!.text(), url: step.url }, {});
  const login = await ua.follow(new URL(started.headers.get('location')!));
  const submitted = await ua.submit({ html: await login.response!.text(), url: login.url }, { login: 'alice-at-linear', password: 'linear-pw' }, { name: 'action', value: 'login' });
  const done = await ua.follow(login.url, () => false, submitted);
  assert.match(await done.response!.text(), /Connected\. Calls to Linear now run as you/);
}

const text = (result: unknown) => JSON.stringify((result as { content?: unknown }).content);

before(async () => {
  pg = await startPostgres();
  idp = await startOidcProvider({ rotateRefreshToken: true, accounts: [{ sub: 'alice-at-linear', password: 'linear-pw' }] });
  linear = await startOAuthUpstream(idp.issuer);
  const tokenFront = await startFront(idp.issuer);
  cluster = await startCluster(
    {
      storage: { type: 'postgres' },
      vault: { key_env: 'VAULT_KEY' },
      outbound: { allow_loopback: true },
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [
        {
          id: 'linear',
          name: 'Linear',
          url: linear.url,
          credential: { type: 'oauth', auth_url: `${idp.issuer}/auth`, token_url: `${tokenFront}/token`, client_id: 'keygate', client_secret_env: 'LINEAR_SECRET', scopes: ['mcp:read'] },
        },
      ],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'linear', identity: 'per_user' }] }],
    },
    { ALICE_PASSWORD: ALICE.password, LINEAR_SECRET, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await pg.createDatabase() },
  );
  await idp.addClient({
    client_id: 'keygate',
    client_secret: LINEAR_SECRET,
    redirect_uris: [`${cluster.url}/connect/callback`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  idp.provider.on('grant.success', (ctx: { oidc: { params?: Record<string, unknown> } }) => grants.push(String(ctx.oidc.params?.grant_type)));
  idp.provider.on('grant.error', (ctx: { oidc: { params?: Record<string, unknown> } }, err: Error) => refused.push(`${String(ctx.oidc.params?.grant_type)}: ${err.message}`));

  aliceToken = (await signIn(cluster.url, ALICE)).tokens.access_token;
  answerTokensWith(30);
  await connectLinear();

  // 20 real SDK clients, half on each instance, of both eras: 2026-07-28 (stateless) and 2025-11-25 (sessions).
  for (let i = 0; i < CALLS; i++) {
    const instance = i % 2;
    const era: Era = i % 4 < 2 ? '2026-07-28' : '2025-11-25';
    const client = newClient(era);
    await client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.url}/mcp/team/linear`), { requestInit: { headers: { authorization: `Bearer ${aliceToken}`, ...cluster.to(instance) } } }));
    clients.push({ client, tool: 'whoami', instance });
  }
});
after(async () => {
  idp.onTokenResponse = undefined;
  for (const { client } of clients) await client.close().catch(() => undefined);
  await cluster?.close();
  front?.closeAllConnections();
  await new Promise<void>((resolve) => (front ? front.close(() => resolve()) : resolve()));
  await linear?.close();
  await idp?.close();
  await pg?.stop();
});

describe('an expiring upstream OAuth token, calls on two instances', () => {
  test('a refresh that fails (the authorization server is down) releases the lock on every instance: the calls are refused, and the next call refreshes once', async () => {
    const grantsBefore = grants.length;
    down = true;
    let results;
    try {
      // Two at once on each instance (2026-07-28 clients): each instance's flight takes the lock in turn, and fails.
      results = await Promise.all([0, 1, 4, 5].map((i) => clients[i]!.client.callTool({ name: 'whoami', arguments: {} })));
    } finally {
      down = false;
    }
    for (const result of results) {
      assert.equal(result.isError, true, JSON.stringify(result));
      assert.match(text(result), /Linear sign-in could not be renewed/);
    }
    assert.deepEqual(grants.slice(grantsBefore), [], 'nothing reached the authorization server');
    // Up again: the lock is free, and the next call (on the other instance) refreshes, once.
    const again = await clients[1]!.client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(text(again), JSON.stringify([{ type: 'text', text: 'alice-at-linear' }]));
    assert.deepEqual(grants.slice(grantsBefore), ['refresh_token']);
    assert.deepEqual(refused, []);
    assert.ok(!cluster.logs().includes(LINEAR_SECRET), 'the client secret is in no log');
  });

  test(`${CALLS} concurrent tools/call spread over two instances cause exactly one refresh at the authorization server; all ${CALLS} reach the upstream with the new token`, async () => {
    // The token set the last test saved said expires_in 30: expiring. This refresh answers slowly, with a long-lived token.
    answerTokensWith(3600, 300);
    const grantsBefore = grants.length;
    const burstStart = linear.seen.length;
    let results;
    try {
      results = await Promise.all(clients.map(({ client, tool }) => client.callTool({ name: tool, arguments: {} })));
    } finally {
      answerTokensWith(30);
    }
    for (const result of results) assert.equal(text(result), JSON.stringify([{ type: 'text', text: 'alice-at-linear' }]), JSON.stringify(result));
    assert.deepEqual(grants.slice(grantsBefore), ['refresh_token'], 'one token request in all, a refresh');
    assert.deepEqual(refused, [], 'no refresh token was spent twice');
    const seen = linear.seen.slice(burstStart);
    assert.ok(seen.length >= CALLS, `the upstream saw ${seen.length} requests`);
    const tokens = new Set(seen.map((s) => s.token));
    assert.equal(tokens.size, 1, 'every call reached the upstream with one token');
    assert.ok(!linear.seen.slice(0, burstStart).some((s) => tokens.has(s.token)), 'a new one');
    assert.ok(seen.every((s) => s.sub === 'alice-at-linear'));
    assert.deepEqual(new Set(clients.map((c) => c.instance)), new Set([0, 1]));
  });
});
