import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { CLOCK_LEEWAY } from '../../server/inbound/registry-jwt.ts';
import { builtinTeam, startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { ADMIN_SCOPE_REQUEST, authorizeUrl, pkce, REDIRECT, registerClient, tokenRequest, type TokenSet } from '../helpers/oauth.ts';
import { authorizeWithLogin } from '../helpers/form.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// Issue 12: instances whose clocks are apart. Three registry processes on one
// PostgreSQL, instance 1's clock 60 s ahead of instance 0's (the documented
// leeway, CLOCK_LEEWAY) and instance 2's five minutes ahead, set with
// libfaketime (Debian's `faketime`, as the process's real clock: Date.now(),
// jose, the store's expiries). A sign-in begun on one instance finishes on
// another, and a token issued by one is accepted by the other, within the
// leeway, in both directions; beyond it, refused.

const FAKETIME_LIBS = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1'];
const libfaketime = FAKETIME_LIBS.find((f) => existsSync(f));
const OFFSETS = ['+0s', `+${CLOCK_LEEWAY}s`, '+300s'];

const DAVE = { username: 'dave', password: `dave-${randomBytes(8).toString('hex')}` };
const ROOT = { username: 'root', password: `root-${randomBytes(8).toString('hex')}` };
let pg: TestPostgres;
let upstream: DemoUpstream;
let cluster: Cluster;
const apiKey = `k-${randomBytes(12).toString('hex')}`;

before(async () => {
  assert.ok(libfaketime, "libfaketime is not installed (Debian: apt-get install faketime; .ci/run does it)");
  pg = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
  cluster = await startCluster(
    {
      ...builtinTeam([ALICE, DAVE], [ROOT]),
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
    },
    { ALICE_PASSWORD: ALICE.password, DAVE_PASSWORD: DAVE.password, ROOT_PASSWORD: ROOT.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await pg.createDatabase() },
    { instances: 3, instanceEnv: (i) => ({ LD_PRELOAD: libfaketime, FAKETIME: OFFSETS[i], FAKETIME_DONT_FAKE_MONOTONIC: '1' }) },
  );
});
after(async () => {
  await cluster?.close();
  await upstream?.close();
  await pg?.stop();
});

/** Authorization request and login on instance `on` (every request of the browser goes there), the code redeemed at instance `redeem`. */
async function signInAcross(on: number, redeem: number, user = ALICE, scope?: string): Promise<Response> {
  cluster.routeTo(on);
  try {
    const { client_id } = await registerClient(cluster.url);
    const { verifier, challenge } = pkce();
    const callback = await authorizeWithLogin(
      authorizeUrl(cluster.url, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', ...(scope ? { scope } : { resource: `${cluster.url}/mcp/team` }) }),
      user.username,
      user.password,
    );
    const code = callback.get('code');
    assert.ok(code, `no code: ${callback}`);
    return await tokenRequest(cluster.url, { grant_type: 'authorization_code', client_id, code, redirect_uri: REDIRECT, code_verifier: verifier }, cluster.to(redeem));
  } finally {
    cluster.routeTo(undefined);
  }
}

async function callEcho(token: string, instance: number): Promise<number> {
  const res = await fetch(`${cluster.url}/mcp/team/demo`, {
    method: 'POST',
    headers: { ...cluster.to(instance), authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe(`instances whose clocks are apart by up to ${CLOCK_LEEWAY} s`, () => {
  test('the clocks really are apart (each instance dates its own answers)', async () => {
    const dates = await Promise.all([0, 1, 2].map(async (i) => Date.parse((await fetch(`${cluster.url}/healthz`, { headers: cluster.to(i) })).headers.get('date')!) / 1000));
    assert.ok(Math.abs(dates[1]! - dates[0]! - CLOCK_LEEWAY) <= 3, `instance 1 is ${dates[1]! - dates[0]!} s ahead`);
    assert.ok(Math.abs(dates[2]! - dates[0]! - 300) <= 3, `instance 2 is ${dates[2]! - dates[0]!} s ahead`);
  });

  for (const [on, redeem] of [[0, 1], [1, 0]] as const) {
    test(`a sign-in on instance ${on} is finished at instance ${redeem}, and the token it gets works on both`, { timeout: 60_000 }, async () => {
      const res = await signInAcross(on, redeem);
      assert.equal(res.status, 200, await res.clone().text());
      const tokens = (await res.json()) as TokenSet;
      assert.equal(await callEcho(tokens.access_token, 0), 200, 'on the instance behind');
      assert.equal(await callEcho(tokens.access_token, 1), 200, 'on the instance ahead');
    });
  }

  test('beyond the leeway, refused: a code issued 5 minutes "earlier" has expired, a token issued 5 minutes "later" is not valid yet', { timeout: 60_000 }, async () => {
    const late = await signInAcross(0, 2);
    assert.equal(late.status, 400);
    assert.match(((await late.json()) as { error_description: string }).error_description, /authorization code has expired/);
    const res = await signInAcross(2, 2);
    assert.equal(res.status, 200);
    const { access_token } = (await res.json()) as TokenSet;
    assert.equal(await callEcho(access_token, 2), 200, 'where it was issued');
    assert.equal(await callEcho(access_token, 0), 401, 'on an instance 5 minutes behind');
  });

  test('a user deactivated on the instance behind: the token the instance 60 s ahead issued a moment before is refused on every instance', { timeout: 60_000 }, async () => {
    const issued = await signInAcross(1, 1, DAVE);
    assert.equal(issued.status, 200);
    const { access_token } = (await issued.json()) as TokenSet;
    assert.equal(await callEcho(access_token, 0), 200);
    const admin = await signInAcross(0, 0, ROOT, ADMIN_SCOPE_REQUEST);
    const adminToken = ((await admin.json()) as TokenSet).access_token;
    const off = await fetch(`${cluster.url}/api/v1/admin/users/dave/disable`, { method: 'POST', headers: { ...cluster.to(0), authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: '{"reason":"left"}' });
    assert.equal(off.status, 200, await off.text());
    // Its iat (instance 1's clock) is after the deactivation (instance 0's clock): only the grant's own revocation catches it.
    assert.equal(await callEcho(access_token, 0), 401, 'on the instance that deactivated');
    for (const i of [1, 2]) {
      let status = 0;
      for (let tries = 0; tries < 100 && status !== 401; tries++) {
        status = await callEcho(access_token, i);
        if (status !== 401) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 401, `on instance ${i}`);
    }
  });
});
