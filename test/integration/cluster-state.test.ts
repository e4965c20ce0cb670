import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test, type TestContext } from 'node:test';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { builtinTeam, startCluster, type Cluster } from '../helpers/cluster.ts';
import { apiClient, CAROL } from '../helpers/control.ts';
import { startFeatureUpstream, type FeatureUpstream } from '../helpers/feature-upstream.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { connect, eventually } from '../helpers/merged-gateway.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// What one instance changes, every other one honours: two registry processes
// on one real PostgreSQL behind a reverse proxy on loopback
// (test/helpers/cluster.ts). A token revoked, a user or client deactivated, a
// connection cut, every break-glass switch flipped on one instance refuses
// the next requests on the other (how soon is measured and reported); a
// LISTEN connection lost and opened again loses nothing; a person's connect
// on one instance reaches their 2025 session on the other as list_changed.
//
// Every request goes through the proxy, pinned to an instance by its
// x-test-instance header (cluster.to(i)); sign-in goes round-robin.

let postgres: TestPostgres;
let databaseUrl: string;
let demo: DemoUpstream;
let docs: FeatureUpstream;
let notes: FeatureUpstream;
let cluster: Cluster;
let adminToken: string;
const apiKey = `k-${randomBytes(12).toString('hex')}`;

before(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase();
  demo = await startDemoUpstream({ apiKey });
  docs = await startFeatureUpstream({ eras: 'legacy', name: 'docs' });
  notes = await startFeatureUpstream({ eras: 'both', name: 'notes' });
  cluster = await startCluster(
    {
      ...builtinTeam([ALICE, BOB], [CAROL]),
      upstreams: [
        { id: 'demo', url: demo.url, credential: { type: 'bearer' } },
        { id: 'docs', url: docs.url, credential: { type: 'bearer' } },
        { id: 'notes', url: notes.url, credential: { type: 'bearer' } },
      ],
      identities: [
        { id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' },
        { id: 'docs-svc', upstream: 'docs', token_env: 'DOCS_KEY' },
      ],
      gateways: [
        { id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
        {
          id: 'hub',
          visibility: 'private',
          servers: [
            { upstream: 'docs', identity: 'shared', shared_identity: 'docs-svc' },
            { upstream: 'notes', identity: 'per_user' },
          ],
        },
      ],
    },
    {
      ALICE_PASSWORD: ALICE.password,
      BOB_PASSWORD: BOB.password,
      CAROL_PASSWORD: CAROL.password,
      DEMO_KEY: apiKey,
      DOCS_KEY: `docs-${randomBytes(8).toString('hex')}`,
      VAULT_KEY: randomBytes(32).toString('base64'),
      KEYGATE_DATABASE_URL: databaseUrl,
    },
  );
  adminToken = (await signInAdmin(cluster.url, CAROL)).tokens.access_token;
});
after(async () => {
  await cluster?.close();
  await Promise.all([demo?.close(), docs?.close(), notes?.close()]);
  await postgres?.stop();
});

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

/** A 2026-07-28 tools/call of the demo's echo on /mcp/team/demo, sent to instance i: the status and the JSON-RPC error's reason. */
async function echoOn(i: number, token: string): Promise<{ status: number; reason: string | undefined; text: string | undefined }> {
  const res = await fetch(`${cluster.url}/mcp/team/demo`, {
    method: 'POST',
    headers: { ...MODERN, ...cluster.to(i), 'mcp-method': 'tools/call', 'mcp-name': 'echo', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: meta } }),
  });
  const body = (await res.json()) as { result?: { content: { text: string }[] }; error?: { data?: { reason: string } } };
  return { status: res.status, reason: body.error?.data?.reason, text: body.result?.content[0]?.text };
}

/** The admin API on instance i. */
function adminOn(i: number) {
  const api = apiClient(cluster.url, adminToken);
  return {
    get: (path: string) => api.call('GET', path, undefined, cluster.to(i)),
    post: (path: string, body?: unknown) => api.call('POST', path, body, cluster.to(i)),
    delete: (path: string) => api.call('DELETE', path, undefined, cluster.to(i)),
  };
}

/** RFC 7009 revocation of `token` by its (public) client, sent to instance i. */
async function revokeOn(i: number, token: string, clientId: string): Promise<number> {
  const res = await fetch(`${cluster.url}/oauth/revoke`, { method: 'POST', headers: cluster.to(i), body: new URLSearchParams({ token, client_id: clientId }) });
  return res.status;
}

/**
 * Send `probe` until `done` holds of its answer (at most `timeoutMs`): the
 * answer, how many tries it took and the milliseconds from `since` to that
 * answer. A figure to report, not to assert on.
 */
async function pollUntil<T>(probe: () => Promise<T>, done: (answer: T) => boolean, since: number, what: string, timeoutMs = 5000) {
  for (let tries = 1; ; tries++) {
    const answer = await probe();
    if (done(answer)) return { answer, tries, ms: performance.now() - since };
    if (performance.now() - since > timeoutMs) throw new Error(`${what}: still ${JSON.stringify(answer)} after ${timeoutMs} ms`);
  }
}

/** The connection (user, gateway team, client) as the admin API lists it, once an instance has learnt it from its audit stream. */
async function connectionId(clientId: string, user: string): Promise<string> {
  for (let i = 0; ; i++) {
    const list = (await adminOn(0).get(`/admin/connections?user=${user}&gateway=team`)).body.connections as { id: string; client_id: string }[];
    const found = list.find((c) => c.client_id === clientId);
    if (found) return found.id;
    if (i > 100) throw new Error(`no connection of ${user} from ${clientId}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a token issued through one instance is accepted by the other', () => {
  test('signed in through the proxy (round-robin), the token calls through both instances', async () => {
    const { tokens } = await signIn(cluster.url, ALICE);
    for (const i of [0, 1]) assert.deepEqual(await echoOn(i, tokens.access_token), { status: 200, reason: undefined, text: 'hi' });
  });
});

describe('revocation and offboarding on instance 1 refuse on instance 0', () => {
  interface Row {
    what: string;
    user: typeof ALICE;
    /** Revoke, on instance 1; returns the status of its answer. */
    revoke: (s: { token: string; clientId: string }) => Promise<number>;
    status: number;
    reason: string;
    /** Undo what can be undone, so the next row starts clean. */
    undo?: (s: { token: string; clientId: string }) => Promise<void>;
  }
  const rows: Row[] = [
    { what: 'RFC 7009 revocation of the access token', user: ALICE, revoke: (s) => revokeOn(1, s.token, s.clientId), status: 401, reason: 'token_revoked' },
    {
      what: 'the user deactivated (offboarding)',
      user: BOB,
      revoke: async () => (await adminOn(1).post('/admin/users/bob/disable', { reason: 'left' })).status,
      status: 401,
      reason: 'user_disabled',
      undo: async () => void (await adminOn(1).post('/admin/users/bob/enable')),
    },
    {
      what: 'the client disabled',
      user: ALICE,
      revoke: async (s) => (await adminOn(1).post(`/admin/clients/${encodeURIComponent(s.clientId)}/disable`)).status,
      status: 401,
      reason: 'client_disabled',
    },
    { what: 'the client deleted', user: ALICE, revoke: async (s) => (await adminOn(1).delete(`/admin/clients/${encodeURIComponent(s.clientId)}`)).status, status: 401, reason: 'client_disabled' },
    {
      what: "the user's connection from that client disabled",
      user: ALICE,
      revoke: async (s) => (await adminOn(1).post(`/admin/connections/${await connectionId(s.clientId, 'alice')}/disable`)).status,
      status: 403,
      reason: 'connection_disabled',
    },
  ];
  for (const row of rows) {
    test(`${row.what} on instance 1: the token is refused on instance 0 (${row.status} ${row.reason}), cached there or not`, async (t: TestContext) => {
      const { clientId, tokens } = await signIn(cluster.url, row.user);
      const s = { token: tokens.access_token, clientId };
      // Instance 0 has validated (and cached) the token.
      assert.equal((await echoOn(0, s.token)).status, 200);
      assert.equal((await echoOn(1, s.token)).status, 200);
      const answered = performance.now();
      assert.equal(await row.revoke(s), row.what.includes('deleted') ? 204 : 200);
      const refused = await pollUntil(() => echoOn(0, s.token), (a) => a.status !== 200, answered, row.what);
      assert.deepEqual([refused.answer.status, refused.answer.reason], [row.status, row.reason]);
      t.diagnostic(`refused on instance 0 after ${refused.ms.toFixed(1)} ms (${refused.tries} request(s))`);
      // It stays refused (the refusal did not depend on which request won a race).
      assert.deepEqual([(await echoOn(0, s.token)).status, (await echoOn(1, s.token)).status], [row.status, row.status]);
      await row.undo?.(s);
    });
  }
});

describe('every break-glass switch flipped on instance 0 holds on instance 1', () => {
  interface Row {
    what: string;
    user: typeof ALICE;
    /** The switch's route under /api/v1/admin, without /disable or /enable. */
    route: (s: { clientId: string }) => Promise<string>;
    status: number;
    reason: string;
    /** The user and client switches end every grant: after enable, people sign in anew. */
    signInAnew?: true;
  }
  const rows: Row[] = [
    { what: 'a gateway', user: ALICE, route: async () => '/admin/gateways/team', status: 403, reason: 'gateway_disabled' },
    { what: 'an upstream', user: ALICE, route: async () => '/admin/upstreams/demo', status: 403, reason: 'upstream_disabled' },
    { what: 'an identity (the shared service account)', user: ALICE, route: async () => '/admin/identities/svc', status: 403, reason: 'identity_disabled' },
    { what: 'a connection', user: ALICE, route: async (s) => `/admin/connections/${await connectionId(s.clientId, 'alice')}`, status: 403, reason: 'connection_disabled' },
    { what: 'a user', user: BOB, route: async () => '/admin/users/bob', status: 401, reason: 'user_disabled', signInAnew: true },
    { what: 'a client', user: ALICE, route: async (s) => `/admin/clients/${encodeURIComponent(s.clientId)}`, status: 401, reason: 'client_disabled', signInAnew: true },
  ];
  for (const row of rows) {
    test(`${row.what} disabled on instance 0 is refused on instance 1 (${row.status} ${row.reason}); enabled, it works again`, async (t: TestContext) => {
      const { clientId, tokens } = await signIn(cluster.url, row.user);
      assert.equal((await echoOn(1, tokens.access_token)).status, 200, 'instance 1 serves the token before');
      const route = await row.route({ clientId });

      const off = await adminOn(0).post(`${route}/disable`, { reason: 'incident 7' });
      assert.deepEqual([off.status, off.body.disabled], [200, true]);
      const answered = performance.now();
      const refused = await pollUntil(() => echoOn(1, tokens.access_token), (a) => a.status !== 200, answered, `${row.what} on instance 1`);
      assert.deepEqual([refused.answer.status, refused.answer.reason], [row.status, row.reason]);
      t.diagnostic(`refused on instance 1 after ${refused.ms.toFixed(1)} ms (${refused.tries} request(s))`);
      assert.deepEqual([(await adminOn(1).get(route)).status, (await adminOn(1).get(route)).body.disabled], [200, true], 'instance 1 lists it disabled');

      const on = await adminOn(0).post(`${route}/enable`);
      assert.deepEqual([on.status, on.body.disabled], [200, false]);
      const token = row.signInAnew ? (await signIn(cluster.url, row.user, { clientId })).tokens.access_token : tokens.access_token;
      if (row.signInAnew) assert.equal((await echoOn(1, tokens.access_token)).reason, row.reason, 'the grants it ended stay ended');
      const back = await pollUntil(() => echoOn(1, token), (a) => a.status === 200, performance.now(), `${row.what} enabled, on instance 1`);
      assert.equal(back.answer.text, 'hi');
    });
  }
});

/** The median and the largest of some figures. */
function summary(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `p50 ${sorted[Math.floor((sorted.length - 1) / 2)]!.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
}

describe('how soon the other instance honours a change (reported, not asserted)', () => {
  const ROUNDS = 20;
  test(`${ROUNDS} revocations on instance 0, each refused on instance 1: the time from the answer to the first refusal`, async (t: TestContext) => {
    const ms: number[] = [];
    let firstTry = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { clientId, tokens } = await signIn(cluster.url, ALICE);
      assert.equal((await echoOn(1, tokens.access_token)).status, 200);
      assert.equal(await revokeOn(0, tokens.access_token, clientId), 200);
      const refused = await pollUntil(() => echoOn(1, tokens.access_token), (a) => a.status === 401, performance.now(), 'the revoked token on instance 1');
      ms.push(refused.ms);
      if (refused.tries === 1) firstTry++;
    }
    t.diagnostic(`revocation, answer on 0 → first refusal on 1: ${summary(ms)}; the first request after the answer was refused in ${firstTry} of ${ROUNDS}`);
    assert.equal(ms.length, ROUNDS);
  });

  test(`${ROUNDS} gateway switches on instance 0, each refused on instance 1: the time from the answer to the first refusal`, async (t: TestContext) => {
    const { tokens } = await signIn(cluster.url, ALICE);
    const ms: number[] = [];
    let firstTry = 0;
    for (let round = 0; round < ROUNDS; round++) {
      assert.equal((await adminOn(0).post('/admin/gateways/team/disable')).status, 200);
      const refused = await pollUntil(() => echoOn(1, tokens.access_token), (a) => a.status === 403, performance.now(), 'the disabled gateway on instance 1');
      ms.push(refused.ms);
      if (refused.tries === 1) firstTry++;
      assert.equal((await adminOn(0).post('/admin/gateways/team/enable')).status, 200);
      await pollUntil(() => echoOn(1, tokens.access_token), (a) => a.status === 200, performance.now(), 'the enabled gateway on instance 1');
    }
    t.diagnostic(`gateway switch, answer on 0 → first refusal on 1: ${summary(ms)}; the first request after the answer was refused in ${firstTry} of ${ROUNDS}`);
    assert.equal(ms.length, ROUNDS);
  });
});

describe("an instance's LISTEN connection lost and opened again", () => {
  /** Instance i's LISTEN connection as PostgreSQL sees it (the store names it with the process id). */
  async function listener(db: pg.Client, i: number): Promise<{ pid: number; started: Date } | undefined> {
    const { rows } = await db.query<{ pid: number; backend_start: Date }>('SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = $1', [`keygate-registry listen (pid ${cluster.instances[i]!.process.child.pid})`]);
    return rows[0] && { pid: rows[0].pid, started: rows[0].backend_start };
  }
  async function waitFor<T>(find: () => Promise<T | undefined>, what: string): Promise<T> {
    for (let i = 0; i < 400; i++) {
      const found = await find();
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  test('a revocation made on instance 0 while instance 1 was not listening is honoured by instance 1 once it listens again', async () => {
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      // The revocation must fall in the gap; should instance 1 listen again before it is made (a slow machine), try again.
      for (let attempt = 1; ; attempt++) {
        const { clientId, tokens } = await signIn(cluster.url, ALICE);
        assert.equal((await echoOn(1, tokens.access_token)).status, 200);
        const listening = await waitFor(() => listener(db, 1), "instance 1's LISTEN connection");
        await db.query('SELECT pg_terminate_backend($1)', [listening.pid]);
        await waitFor(async () => ((await listener(db, 1))?.pid === listening.pid ? undefined : true), 'the terminated backend to go');

        assert.equal(await revokeOn(0, tokens.access_token, clientId), 200);
        const revokedAt = (await db.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
        const again = await waitFor(() => listener(db, 1), "instance 1's new LISTEN connection");
        if (again.started <= revokedAt) {
          assert.ok(attempt < 5, 'instance 1 listened again before the revocation five times');
          continue;
        }
        const refused = await pollUntil(() => echoOn(1, tokens.access_token), (a) => a.status !== 200, performance.now(), 'the token revoked during the gap, on instance 1');
        assert.deepEqual([refused.answer.status, refused.answer.reason], [401, 'token_revoked']);
        break;
      }
      assert.match(cluster.logs(), /PostgreSQL LISTEN connection lost/);
      assert.ok(!cluster.logs().includes(new URL(databaseUrl).password), 'the database password is in no log');
    } finally {
      await db.end();
    }
  });
});

describe("a person's change on one instance reaches their sessions on the other", () => {
  test('connecting a per-user identity on instance 0 sends tools/list_changed to their 2025 session on instance 1 (SDK client, SSE stream), which then lists the server\'s own tools', async () => {
    const { tokens } = await signIn(cluster.url, ALICE);
    const heard = { toolsChanged: 0, logs: [] as string[] };
    const { client } = await connect(`${cluster.url}/mcp/hub`, '2025-11-25', {
      token: tokens.access_token,
      headers: cluster.to(1),
      configure: (c) => {
        c.setNotificationHandler('notifications/tools/list_changed', () => void heard.toolsChanged++);
        c.setNotificationHandler('notifications/message', (n) => void heard.logs.push(String(n.params.data)));
      },
    });
    try {
      const before = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!before.includes('notes__whoami'), `no identity yet, so not the server's own tools: ${before}`);
      // The standalone SSE stream is open once an upstream's log message reaches it.
      for (let round = 0; !heard.logs.includes(`ready ${round - 1}`); round++) {
        assert.ok(round < 40, 'the standalone stream opens');
        await docs.broadcastLog(`ready ${round}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const told = heard.toolsChanged;

      const created = await apiClient(cluster.url, tokens.access_token).call('POST', '/me/identities', { upstream: 'notes', token: 'alice-notes-token', select: { gateway: 'hub', server: 'notes' } }, cluster.to(0));
      assert.equal(created.status, 201);
      await eventually(() => heard.toolsChanged > told, 'tools/list_changed on the session held by instance 1');
      const after = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(after.includes('notes__whoami'), `the server's own tools after connecting: ${after}`);
      const result = (await client.callTool({ name: 'notes__whoami', arguments: {} })) as { content: { text: string }[] };
      assert.equal(result.content[0]!.text, 'Bearer alice-notes-token');
    } finally {
      await client.close();
    }
  });
});
