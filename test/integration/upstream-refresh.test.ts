import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ALICE } from '../helpers/fixture.ts';
import { type Era, newClient } from '../helpers/mcp-oauth.ts';
import { signIn } from '../helpers/oauth.ts';
import { startOAuthUpstream } from '../helpers/oauth-upstream.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { UserAgent } from '../helpers/user-agent.ts';

// Issue 4's proof: 20 concurrent tool calls that find a person's upstream
// OAuth token expiring cause exactly one refresh at the upstream's
// authorization server (a real oidc-provider that rotates refresh tokens and
// refuses a reused one), the new token set is saved before any call uses it,
// and every call reaches the upstream with the new access token.

const CALLS = 20;

let idp: TestIdp;
let linear: Awaited<ReturnType<typeof startOAuthUpstream>>;
let r: TestRegistry;
let base: string;
let aliceToken: string;
const clients: { client: Client; tool: string; era: Era }[] = [];
/** grant_type of every token request the IdP answered, in order, and those it refused. */
const grants: string[] = [];
const refused: string[] = [];

/** Sign in to the registry's connect pages as alice and connect Linear at its own authorization server. */
async function connectLinear(): Promise<void> {
  const ua = new UserAgent();
  let step = await ua.follow(`${base}/connect/team/linear`);
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

async function identity() {
  const record = (await r.registry.identities.records.findBy('owner', 'alice')).map(([, i]) => i).find((i) => i.kind === 'oauth')!;
  const secret = r.registry.identities.reveal(record);
  assert.equal(secret.kind, 'oauth');
  return { record, secret: secret as Extract<typeof secret, { kind: 'oauth' }> };
}

/** Make the stored access token expired (the refresh token stays). */
async function expire(): Promise<void> {
  const { record, secret } = await identity();
  await r.registry.identities.replaceSecret(record, { ...secret, expires_at: Math.floor(Date.now() / 1000) - 10 });
}

before(async () => {
  idp = await startOidcProvider({ registration: true, rotateRefreshToken: true, accounts: [{ sub: 'alice-at-linear', password: 'linear-pw' }] });
  linear = await startOAuthUpstream(idp.issuer);
  r = await startRegistry(
    {
      outbound: { allow_loopback: true },
      oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'A', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [{ id: 'linear', name: 'Linear', url: linear.url, credential: { type: 'oauth', scopes: ['mcp:read'] } }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'linear', identity: 'per_user' }] }],
    },
    { A: ALICE.password },
  );
  base = r.url;
  aliceToken = (await signIn(base, ALICE)).tokens.access_token;
  await connectLinear();
  idp.provider.on('grant.success', (ctx: { oidc: { params?: Record<string, unknown> } }) => grants.push(String(ctx.oidc.params?.grant_type)));
  idp.provider.on('grant.error', (ctx: { oidc: { params?: Record<string, unknown> } }, err: Error) => refused.push(`${String(ctx.oidc.params?.grant_type)}: ${err.message}`));

  // 20 real SDK clients of both eras, on both endpoints: 2026-07-28 on /mcp/team/linear, 2025-11-25 (sessions) on /mcp/team.
  for (let i = 0; i < CALLS; i++) {
    const era: Era = i % 2 ? '2025-11-25' : '2026-07-28';
    const client = newClient(era);
    const url = era === '2026-07-28' ? `${base}/mcp/team/linear` : `${base}/mcp/team`;
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${aliceToken}` } } }));
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name.endsWith('whoami'))!.name;
    clients.push({ client, tool, era });
  }
});
after(async () => {
  for (const { client } of clients) await client.close().catch(() => undefined);
  await r?.close();
  await linear?.close();
  await idp?.close();
});

describe('an expiring upstream OAuth token, many calls at once', () => {
  for (const round of [1, 2]) {
    test(`round ${round}: ${CALLS} concurrent tools/call cause exactly one refresh, saved before any call uses it; all ${CALLS} reach the upstream with the new token`, async () => {
      const before = await identity();
      await expire();
      // Slow the authorization server's answers so every call arrives while the refresh is in flight.
      idp.onTokenResponse = async (body) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return body;
      };
      const grantsBefore = grants.length;
      const burstStart = linear.seen.length;
      // How many upstream requests had happened when the new token set was written to the store.
      const savedWhenSeen: number[] = [];
      const stop = r.store.onChange('identities', () => savedWhenSeen.push(linear.seen.length));
      let results;
      try {
        results = await Promise.all(clients.map(({ client, tool }) => client.callTool({ name: tool, arguments: {} })));
      } finally {
        stop();
        idp.onTokenResponse = undefined;
      }

      for (const result of results) assert.deepEqual(result.content, [{ type: 'text', text: 'alice-at-linear' }], JSON.stringify(result));
      // Exactly one token request during the burst, a refresh_token grant, and none refused.
      assert.deepEqual(grants.slice(grantsBefore), ['refresh_token']);
      assert.deepEqual(refused, []);
      // The new token set (a rotated refresh token too) was saved once, before any call reached the upstream.
      const after = await identity();
      assert.notEqual(after.secret.access_token, before.secret.access_token);
      assert.ok(after.secret.refresh_token && after.secret.refresh_token !== before.secret.refresh_token, 'the rotated refresh token is stored');
      assert.ok(after.secret.expires_at! > Date.now() / 1000 + 60);
      assert.deepEqual(savedWhenSeen, [burstStart], 'one write, and no upstream request before it');
      // Every call reached the upstream, each with the new access token (never the expired one).
      const seen = linear.seen.slice(burstStart);
      assert.ok(seen.length >= CALLS, `the upstream saw ${seen.length} requests`);
      assert.deepEqual(new Set(seen.map((s) => s.token)), new Set([after.secret.access_token]));
      assert.ok(seen.every((s) => s.sub === 'alice-at-linear'));
      // Round 2 refreshes with the refresh token round 1 saved: the IdP would refuse the consumed one.
      assert.ok(!readFileSync(join(r.dataDir, 'store.json'), 'utf8').includes(after.secret.refresh_token!), 'tokens are sealed at rest');
    });
  }
});
