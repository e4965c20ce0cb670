import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { builtinTeam, startCluster, type Cluster } from '../helpers/cluster.ts';
import { CAROL } from '../helpers/control.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// One audit log for every instance (storage.type: postgres): the MCP requests
// and admin changes of two registry processes land in one table, and an admin
// asking either instance reads the records of both, in time order, filtered
// as on one instance; the JSONL export has the shape it has on lowdb. Checked
// over HTTP, through the reverse proxy of test/helpers/cluster.ts.

let pg: TestPostgres;
let upstream: DemoUpstream;
let team: Cluster;
let single: Cluster;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
const env = { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, CAROL_PASSWORD: CAROL.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64') };

function config(storage: Record<string, unknown>): Record<string, unknown> {
  return {
    ...builtinTeam([ALICE, BOB], [CAROL], storage),
    upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
    identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
    gateways: [
      { id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
      { id: 'other', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
    ],
  };
}

before(async () => {
  pg = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
  team = await startCluster(config({ type: 'postgres' }), { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() });
  single = await startCluster(config({ type: 'lowdb' }), env, { instances: 1 });
});
after(async () => {
  await team?.close();
  await single?.close();
  await upstream?.close();
  await pg?.stop();
});

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

/** A 2026-07-28 request through `gateway`, sent to instance `i` by the proxy; what the client got. */
async function call(cluster: Cluster, i: number, token: string, gateway: string, method: string, params: Record<string, unknown> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${cluster.url}/mcp/${gateway}/demo`, {
    method: 'POST',
    headers: { ...MODERN, ...cluster.to(i), 'mcp-method': method, ...(typeof params.name === 'string' && { 'mcp-name': params.name }), authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: meta } }),
  });
  return { status: res.status, body: await res.json() };
}

/** GET /api/v1/audit on instance i. */
async function audit(cluster: Cluster, i: number, token: string, query: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${cluster.url}/api/v1/audit?${query}`, { headers: { ...cluster.to(i), authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function entries(cluster: Cluster, i: number, token: string, query: string): Promise<any[]> {
  const res = await audit(cluster, i, token, query);
  assert.equal(res.status, 200, res.text);
  return (JSON.parse(res.text) as { entries: any[] }).entries;
}

/** Another instance's records arrive once it flushes its batch: poll (bounded) until `count` match. */
async function eventually(cluster: Cluster, i: number, token: string, query: string, count: number): Promise<any[]> {
  for (let attempt = 0; ; attempt++) {
    const found = await entries(cluster, i, token, query);
    if (found.length >= count || attempt >= 100) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Each request a different method, so the order the log gives is checkable; alternating instances.
const SEQUENCE: [number, string, Record<string, unknown>][] = [
  [0, 'tools/call', { name: 'echo', arguments: { message: 'one' } }],
  [1, 'tools/list', {}],
  [0, 'prompts/get', { name: 'greet', arguments: { name: 'Ada' } }],
  [1, 'prompts/list', {}],
  [0, 'resources/list', {}],
];

describe('one audit log for two instances on PostgreSQL', () => {
  let alice: string;
  let bob: string;
  let carol: string;

  before(async () => {
    alice = (await signIn(team.url, ALICE)).tokens.access_token;
    bob = (await signIn(team.url, BOB)).tokens.access_token;
    carol = (await signInAdmin(team.url, CAROL)).tokens.access_token;
  });

  test("MCP requests through instance 0 and 1 are read back from either instance's admin API, in time order", async () => {
    for (const [i, method, params] of SEQUENCE) {
      const res = await call(team, i, alice, 'team', method, params);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.error, undefined, JSON.stringify(res.body));
    }
    const expected = SEQUENCE.map(([, method]) => method).reverse(); // the JSON API answers newest first
    for (const i of [0, 1]) {
      const found = await eventually(team, i, carol, 'kind=mcp&user=alice&gateway=team', SEQUENCE.length);
      assert.deepEqual(found.map((e) => e.method), expected, `the log read on instance ${i}`);
      assert.ok(found.every((e) => e.outcome === 'ok' && e.gateway === 'team' && e.server === 'demo' && e.identity === 'svc'));
      const times = found.map((e) => Date.parse(e.time));
      assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    }
    // The export, oldest first: the same records, in the same order, from either instance.
    const exports = await Promise.all([0, 1].map((i) => audit(team, i, carol, 'kind=mcp&user=alice&gateway=team&format=jsonl')));
    assert.equal(exports[0]!.text, exports[1]!.text);
    assert.deepEqual(exports[0]!.text.trim().split('\n').map((l) => JSON.parse(l).method), SEQUENCE.map(([, m]) => m));
  });

  test('the filters hold on the shared log: user, gateway, outcome, time, limit', async () => {
    const mark = new Date().toISOString();
    assert.equal((await call(team, 1, bob, 'other', 'tools/call', { name: 'echo', arguments: { message: 'bob' } })).status, 200);
    const missing = await call(team, 0, bob, 'other', 'tools/call', { name: 'no_such_tool', arguments: {} });
    assert.equal(missing.status, 200);
    await eventually(team, 0, carol, 'user=bob', 2);

    for (const i of [0, 1]) {
      const bobs = await entries(team, i, carol, 'user=bob');
      assert.deepEqual(bobs.map((e) => [e.subject, e.gateway, e.name]), [['bob', 'other', 'no_such_tool'], ['bob', 'other', 'echo']]);
      assert.deepEqual((await entries(team, i, carol, 'gateway=other')).map((e) => e.subject), ['bob', 'bob'], 'gateway=other: only the calls through it');
      assert.ok((await entries(team, i, carol, 'gateway=team')).every((e) => e.subject === 'alice'));
      assert.deepEqual((await entries(team, i, carol, 'user=alice&since=' + encodeURIComponent(mark))).length, 0, 'since: nothing of alice after the mark');
      assert.equal((await entries(team, i, carol, 'user=alice&until=' + encodeURIComponent(mark))).length, SEQUENCE.length, 'until: all of alice before the mark');
      assert.deepEqual((await entries(team, i, carol, 'user=bob&limit=1')).map((e) => e.name), ['no_such_tool'], 'limit: the newest');
      const okOnly = await entries(team, i, carol, 'user=bob&outcome=ok');
      const errors = await entries(team, i, carol, 'user=bob&outcome=error');
      assert.equal(okOnly.length + errors.length, 2);
      assert.ok(okOnly.every((e) => e.outcome === 'ok') && errors.every((e) => e.outcome !== 'ok'));
      assert.deepEqual((await entries(team, i, carol, 'kind=admin&user=bob')).length, 0, 'kind=admin: no MCP request');
    }
  });

  test('an admin change made on instance 1 appears in the audit read on instance 0', async (t) => {
    const disable = await fetch(`${team.url}/api/v1/admin/gateways/other/disable`, {
      method: 'POST',
      headers: { ...team.to(1), authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'audit across instances' }),
    });
    assert.equal(disable.status, 200, await disable.text());
    const answered = performance.now();
    const [change] = await eventually(team, 0, carol, 'kind=admin&action=gateway.disable&target=gateway:other', 1);
    assert.ok(change, 'the change made on instance 1 is in the log read on instance 0');
    t.diagnostic(`the change made on instance 1 was readable on instance 0 ${(performance.now() - answered).toFixed(0)} ms after its answer`);
    assert.deepEqual([change.subject, change.action, change.target, change.outcome, change.reason, change.before.disabled, change.after.disabled], ['carol', 'gateway.disable', { type: 'gateway', id: 'other' }, 'ok', 'audit across instances', false, true]);
    assert.deepEqual(await entries(team, 0, carol, 'kind=admin&target=gateway:team'), [], 'target: another gateway has no change');
    assert.deepEqual(await entries(team, 0, carol, 'kind=admin&action=gateway.enable'), [], 'action: no enable yet');
    const enable = await fetch(`${team.url}/api/v1/admin/gateways/other/enable`, { method: 'POST', headers: { ...team.to(0), authorization: `Bearer ${carol}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(enable.status, 200);
    const both = await eventually(team, 1, carol, 'kind=admin&target=gateway:other', 2);
    assert.deepEqual(both.map((c) => c.action), ['gateway.enable', 'gateway.disable'], 'read on instance 1, newest first');
  });

  test('the JSONL export has the shape it has on lowdb: the same content type, the same fields in the same order, line by line', async () => {
    const [aliceSingle, carolSingle] = [(await signIn(single.url, ALICE)).tokens.access_token, (await signInAdmin(single.url, CAROL)).tokens.access_token];
    for (const [, method, params] of SEQUENCE) assert.equal((await call(single, 0, aliceSingle, 'team', method, params)).status, 200);
    const onLowdb = await audit(single, 0, carolSingle, 'kind=mcp&user=alice&format=jsonl');
    const onPostgres = await audit(team, 1, carol, 'kind=mcp&user=alice&gateway=team&format=jsonl');
    assert.equal(onLowdb.status, 200);
    assert.equal(onPostgres.status, 200);
    assert.equal(onPostgres.type, onLowdb.type);
    const shape = (text: string) => text.trim().split('\n').map((line) => Object.keys(JSON.parse(line)));
    assert.equal(shape(onLowdb.text).length, SEQUENCE.length);
    assert.deepEqual(shape(onPostgres.text), shape(onLowdb.text));
    assert.ok(onPostgres.text.endsWith('\n'));
    // Each exported line is the record the JSON API answers, as it was written.
    const asJson = (await entries(team, 1, carol, 'kind=mcp&user=alice&gateway=team')).reverse();
    assert.deepEqual(onPostgres.text.trim().split('\n'), asJson.map((e) => JSON.stringify(e)));
  });

  test('no secret reaches the log or the logs', async () => {
    const everything = (await audit(team, 0, carol, 'format=jsonl')).text + team.logs();
    for (const secret of [apiKey, ALICE.password, BOB.password, CAROL.password, env.VAULT_KEY, alice, bob, carol, new URL(await pg.createDatabase()).password]) {
      assert.ok(!everything.includes(secret), 'a secret is in the audit or the logs');
    }
  });
});
