import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { builtinTeam, startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// Issue 11: a 2025 MCP client whose consecutive requests land on different
// registry instances keeps working. Two registry processes on one PostgreSQL
// behind a reverse proxy (test/helpers/cluster.ts); every request of a client
// is sent to the other instance than the one before (initialize on 0, the
// next on 1, ...), on the merged endpoint /mcp/{gateway} (what VS Code uses)
// and on the raw endpoint /mcp/{gateway}/{server}. The session stays the
// person's: another person's token with the id is refused on every instance,
// and a session ended (DELETE) on one is ended on all.

const ERAS = ['2025-11-25', '2025-06-18'] as const;
const ENDPOINTS = [
  ['merged', '/mcp/team', 'demo__echo'],
  ['raw', '/mcp/team/demo', 'echo'],
] as const;

let pg: TestPostgres;
let demo: DemoUpstream;
let other: DemoUpstream;
let cluster: Cluster;
let aliceToken: string;
let bobToken: string;
const apiKey = `k-${randomBytes(12).toString('hex')}`;

before(async () => {
  pg = await startPostgres();
  demo = await startDemoUpstream({ apiKey });
  other = await startDemoUpstream({ apiKey });
  cluster = await startCluster(
    {
      ...builtinTeam([ALICE, BOB]),
      upstreams: [
        { id: 'demo', url: demo.url, credential: { type: 'bearer' } },
        { id: 'other', url: other.url, credential: { type: 'bearer' } },
      ],
      identities: [
        { id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' },
        { id: 'svc-other', upstream: 'other', token_env: 'DEMO_KEY' },
      ],
      gateways: [
        {
          id: 'team',
          visibility: 'private',
          servers: [
            { upstream: 'demo', identity: 'shared', shared_identity: 'svc' },
            { upstream: 'other', identity: 'shared', shared_identity: 'svc-other' },
            // Each person's own key, which nobody has connected: calls say how to connect, in the form the client declared it can act on.
            { upstream: 'demo', name: 'personal', identity: 'per_user' },
          ],
        },
      ],
    },
    { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await pg.createDatabase() },
  );
  aliceToken = (await signIn(cluster.url, ALICE)).tokens.access_token;
  bobToken = (await signIn(cluster.url, BOB)).tokens.access_token;
});
after(async () => {
  await cluster?.close();
  await demo?.close();
  await other?.close();
  await pg?.stop();
});

/** Where each request of a client went: the instance, the HTTP method and the JSON-RPC method. */
interface Sent {
  instance: number;
  method: string;
  rpc: string | undefined;
  status: number;
  /** Until the answer's headers. */
  ms: number;
}

/** A 2025 SDK client whose every request goes to the other instance than the one before (or, with `instances`, to those in turn). */
async function alternatingClient(path: string, era: (typeof ERAS)[number], token: string, capabilities: Record<string, unknown> = {}, instances = [0, 1]): Promise<{ client: Client; transport: StreamableHTTPClientTransport; sent: Sent[] }> {
  const sent: Sent[] = [];
  let next = 0;
  const fetch = async (url: string | URL, init: RequestInit = {}): Promise<Response> => {
    const instance = instances[next++ % instances.length]!;
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(cluster.to(instance))) headers.set(name, value);
    const rpc = typeof init.body === 'string' ? (JSON.parse(init.body) as { method?: string }).method : undefined;
    const started = performance.now();
    const res = await globalThis.fetch(url, { ...init, headers });
    sent.push({ instance, method: init.method ?? 'GET', rpc, status: res.status, ms: performance.now() - started });
    return res;
  };
  const client = new Client({ name: 'keygate-test', version: '1.0.0' }, { supportedProtocolVersions: [era], capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(`${cluster.url}${path}`), { fetch, requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport, sent };
}

/** One JSON-RPC request with a session id, sent to one instance, as a client would. */
function post(path: string, instance: number, token: string, sessionId: string, era: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${cluster.url}${path}`, {
    method: 'POST',
    headers: { ...cluster.to(instance), authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': era },
    body: JSON.stringify(body),
  });
}

const toolsList = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} };

for (const [kind, path, echo] of ENDPOINTS) {
  for (const era of ERAS) {
    describe(`a ${era} session on the ${kind} endpoint (${path}), its requests alternating between two instances`, () => {
      test('initialize, tools/list and several tools/call all succeed, each request on the other instance than the one before', async (t) => {
        const { client, sent } = await alternatingClient(path, era, aliceToken);
        try {
          assert.equal(client.getNegotiatedProtocolVersion(), era);
          const { tools } = await client.listTools();
          assert.ok(tools.some((t) => t.name === echo), tools.map((t) => t.name).join(' '));
          for (let i = 0; i < 6; i++) {
            const result = await client.callTool({ name: echo, arguments: { message: `call ${i}` } });
            assert.deepEqual(result.content, [{ type: 'text', text: `call ${i}` }], JSON.stringify(result));
          }
          const calls = sent.filter((s) => s.rpc === 'tools/call');
          assert.equal(calls.length, 6);
          assert.deepEqual(new Set(calls.map((c) => c.instance)), new Set([0, 1]), 'the calls were served by both instances');
          assert.ok(sent.every((s) => s.status < 400), JSON.stringify(sent));
          assert.equal(sent.find((s) => s.rpc === 'initialize')?.instance, 0);
          // Reported, not asserted: the first request on instance 1 opens the session there.
          const posts = sent.filter((s) => s.method === 'POST');
          const first = posts.find((s) => s.instance === 1)!;
          const later = posts.filter((s) => s !== first && s.rpc !== 'initialize').map((s) => s.ms).sort((x, y) => x - y);
          t.diagnostic(`${kind} ${era}: first request on the other instance (${first.rpc}) ${first.ms.toFixed(1)} ms; later requests median ${later[Math.floor(later.length / 2)]!.toFixed(1)} ms`);
        } finally {
          await client.close();
        }
      });

      test("the session id with another person's token is refused on both instances, as on one (404, unknown session)", async () => {
        // Begun on instance 0 only: instance 1 is asked to open it (first by bob), instance 0 holds it.
        const { client, transport } = await alternatingClient(path, era, aliceToken, {}, [0]);
        try {
          const sessionId = transport.sessionId!;
          for (const instance of [1, 0]) {
            const stolen = await post(path, instance, bobToken, sessionId, era, toolsList);
            assert.equal(stolen.status, 404, `instance ${instance}`);
            const body = (await stolen.json()) as { error?: { message?: string; data?: { reason?: string } }; result?: unknown };
            assert.equal(body.result, undefined);
            assert.equal(body.error?.data?.reason, 'unknown_session');
            // A forged id (the binding's MAC changed) is refused alike, with alice's own token.
            const forged = `${sessionId.slice(0, -2)}${sessionId.endsWith('AA') ? 'BB' : 'AA'}`;
            assert.equal((await post(path, instance, aliceToken, forged, era, toolsList)).status, 404, `forged, instance ${instance}`);
            // Alice's own token with the id works on that instance.
            assert.equal((await post(path, instance, aliceToken, sessionId, era, toolsList)).status, 200, `alice, instance ${instance}`);
          }
        } finally {
          await client.close();
        }
      });

      test('a session ended (DELETE) on one instance is ended on the other: its next request there is 404', async (t) => {
        const { client, transport, sent } = await alternatingClient(path, era, aliceToken);
        const sessionId = transport.sessionId!;
        // Both instances have served the session.
        await client.listTools();
        await client.listTools();
        assert.deepEqual(new Set(sent.filter((s) => s.method === 'POST').map((s) => s.instance)), new Set([0, 1]));
        await transport.terminateSession();
        const ended = sent.at(-1)!;
        assert.equal(ended.method, 'DELETE');
        assert.equal(ended.status, 200);
        await client.close();
        // The other instance refuses it (within the propagation bound: asked until it does, for at most 5 s) and so does the one that ended it.
        const elsewhere = 1 - ended.instance;
        const since = performance.now();
        let status = 0;
        let tries = 0;
        while (status !== 404 && performance.now() - since < 5000) {
          if (tries++) await new Promise((resolve) => setTimeout(resolve, 5));
          status = (await post(path, elsewhere, aliceToken, sessionId, era, toolsList)).status;
        }
        assert.equal(status, 404, `the instance that did not end it (${elsewhere})`);
        t.diagnostic(`${kind} ${era}: the other instance refused the ended session ${(performance.now() - since).toFixed(1)} ms after the DELETE was answered (${tries} requests)`);
        assert.equal((await post(path, ended.instance, aliceToken, sessionId, era, toolsList)).status, 404, `the instance that ended it (${ended.instance})`);
      });
    });
  }
}

describe('a picked-up session is the session the client began', () => {
  test('the instance that picks a 2025-11-25 session up knows what the client declared at initialize: URL elicitation (-32042) for a server the person has not connected, on both instances', async () => {
    const { client, sent } = await alternatingClient('/mcp/team', '2025-11-25', aliceToken, { elicitation: { url: {} } });
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(client.callTool({ name: 'personal__echo', arguments: { message: 'hi' } }), (err: { code: number; data: { elicitations: { mode: string; url: string }[] } }) => {
          assert.equal(err.code, -32042);
          assert.deepEqual(err.data.elicitations.map((e) => [e.mode, e.url]), [['url', `${cluster.url}/connect/team/personal`]]);
          return true;
        });
      }
      assert.deepEqual(new Set(sent.filter((s) => s.rpc === 'tools/call').map((s) => s.instance)), new Set([0, 1]));
    } finally {
      await client.close();
    }
  });
});
