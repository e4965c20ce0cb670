import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { CAROL } from '../helpers/control.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// /healthz tells the truth about the database: with PostgreSQL down, every
// instance answers 503 {"status":"store_unavailable"} (its check times out
// rather than waiting on the pool), and once PostgreSQL is back they answer
// 200 again and serve MCP calls, without a restart. Two registry processes
// behind the reverse proxy of test/helpers/cluster.ts; the test PostgreSQL is
// taken down and brought back on the same data and port, then frozen
// (SIGSTOP: connections open, no answer) and thawed.

let pg: TestPostgres;
let upstream: DemoUpstream;
let cluster: Cluster;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
const env = { ALICE_PASSWORD: ALICE.password, CAROL_PASSWORD: CAROL.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64') };

before(async () => {
  pg = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
  cluster = await startCluster(
    {
      storage: { type: 'postgres' },
      vault: { key_env: 'VAULT_KEY' },
      oauth_server: { builtin: {
          users: [
            { username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] },
            { username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] },
          ],
        },
      },
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
    },
    { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() },
  );
});
after(async () => {
  await cluster?.close();
  await upstream?.close();
  await pg?.stop();
});

async function health(i: number): Promise<{ status: number; body: unknown; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${cluster.url}/healthz`, { headers: cluster.to(i) });
  return { status: res.status, body: await res.json(), ms: performance.now() - started };
}

/** Poll instance i's /healthz (bounded) until it answers `status`; returns that answer and the slowest answer seen. */
async function healthBecomes(i: number, status: number): Promise<{ body: unknown; slowest: number }> {
  let slowest = 0;
  for (let attempt = 0; attempt < 120; attempt++) {
    const answer = await health(i);
    slowest = Math.max(slowest, answer.ms);
    if (answer.status === status) return { body: answer.body, slowest };
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`instance ${i}'s /healthz never answered ${status}`);
}

async function echo(i: number, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${cluster.url}/mcp/team/demo`, {
    method: 'POST',
    headers: {
      ...cluster.to(i),
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'back' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } } },
    }),
  });
  return { status: res.status, body: await res.json() };
}

describe('health across a database outage', () => {
  test('both instances go 503 store_unavailable while PostgreSQL is down and 200 once it is back, without a restart; a call made meanwhile is served and its audit record written when the database returns', async (t) => {
    const token = (await signIn(cluster.url, ALICE)).tokens.access_token;
    const admin = (await signInAdmin(cluster.url, CAROL)).tokens.access_token;
    for (const i of [0, 1]) {
      assert.deepEqual((await health(i)).body, { status: 'ok' });
      assert.equal((await echo(i, token)).status, 200);
    }

    // The calls above are audited when their answers close, a moment after the client has them: the outage starts clearly after.
    await new Promise((r) => setTimeout(r, 200));
    const outage = Date.now();
    await pg.halt();
    for (const i of [0, 1]) {
      const down = await healthBecomes(i, 503);
      assert.deepEqual(down.body, { status: 'store_unavailable' });
      t.diagnostic(`instance ${i}: slowest /healthz answer while going down ${down.slowest.toFixed(0)} ms`);
    }
    // The MCP request path reads no store and waits on no audit write: a call goes through with the database down.
    const during = await echo(1, token);
    assert.equal(during.status, 200, JSON.stringify(during.body));
    const whileDown = await Promise.all([0, 1].map((i) => health(i)));
    t.diagnostic(`/healthz with the database down: ${whileDown.map((h) => `${h.ms.toFixed(0)} ms`).join(', ')}`);
    assert.deepEqual(whileDown.map((h) => [h.status, h.body]), [[503, { status: 'store_unavailable' }], [503, { status: 'store_unavailable' }]]);

    const resumed = performance.now();
    const resumedAt = Date.now();
    await pg.resume();
    for (const i of [0, 1]) {
      const up = await healthBecomes(i, 200);
      assert.deepEqual(up.body, { status: 'ok' });
      t.diagnostic(`instance ${i}: healthy ${(performance.now() - resumed).toFixed(0)} ms after PostgreSQL accepted connections again`);
    }
    for (const i of [0, 1]) {
      const res = await echo(i, token);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.match(res.body.result?.content?.[0]?.text ?? '', /back/, JSON.stringify(res.body));
    }
    // The record of the call made during the outage was kept, and written once the database was back.
    let kept: any[] = [];
    for (let attempt = 0; attempt < 100 && kept.length === 0; attempt++) {
      const res = await fetch(`${cluster.url}/api/v1/audit?kind=mcp&user=alice`, { headers: { ...cluster.to(0), authorization: `Bearer ${admin}` } });
      kept = ((await res.json()) as { entries: any[] }).entries.filter((e) => Date.parse(e.time) >= outage && Date.parse(e.time) <= resumedAt);
      if (kept.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(kept.map((e) => [e.method, e.outcome]), [['tools/call', 'ok']], 'the call made while the database was down is in the log');
    // Each instance hears the other's changes again (its LISTEN connection was opened again): a gateway disabled on 0 is refused on 1.
    const disabled = await fetch(`${cluster.url}/api/v1/admin/gateways/team/disable`, { method: 'POST', headers: { ...cluster.to(0), authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'after the outage' }) });
    assert.equal(disabled.status, 200, await disabled.text());
    let refused: { status: number; body: any } | undefined;
    for (let attempt = 0; attempt < 100 && !refused; attempt++) {
      const res = await echo(1, token);
      if (res.status !== 200 || res.body.error) refused = res;
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(refused, 'instance 1 heard that instance 0 disabled the gateway');
    assert.match(JSON.stringify(refused.body), /disabled/);
    const enabled = await fetch(`${cluster.url}/api/v1/admin/gateways/team/enable`, { method: 'POST', headers: { ...cluster.to(1), authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(enabled.status, 200);
    for (let attempt = 0; attempt < 100 && (await echo(0, token)).status !== 200; attempt++) await new Promise((r) => setTimeout(r, 50));
    // The instances were not restarted: still the same processes.
    assert.ok(cluster.instances.every((x) => x.process.child.exitCode === null));
    assert.ok(!cluster.logs().includes(new URL(pg.url).password), 'the database password is in no log');
  });

  test('a database that stops answering: /healthz answers 503 after its check times out, rather than hanging, and 200 once it answers again', { timeout: 60_000 }, async (t) => {
    pg.freeze();
    try {
      for (const i of [0, 1]) {
        // Several checks in a row: each times out on its own, whatever the earlier ones left waiting in the pool.
        for (let n = 0; n < 3; n++) {
          const answer = await health(i);
          assert.deepEqual([answer.status, answer.body], [503, { status: 'store_unavailable' }]);
          t.diagnostic(`instance ${i}: /healthz answered 503 after ${answer.ms.toFixed(0)} ms with the database frozen`);
        }
      }
    } finally {
      pg.thaw();
    }
    for (const i of [0, 1]) assert.deepEqual((await healthBecomes(i, 200)).body, { status: 'ok' });
  });
});
