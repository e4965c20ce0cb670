import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// A 2025 client on a raw per-user endpoint (/mcp/{gateway}/{server}) that
// opened its session before the person connected their account talks to
// Keygate's stand-in. Once they connect (here: POST /api/v1/me/identities,
// as the sidebar does), the same session goes on at the upstream with their
// credential: the gateway opens the upstream session on the client's behalf,
// replaying the client's own initialize, and the client keeps its
// Mcp-Session-Id. The id stays bound to its caller: nobody else can use it.

let g: MergedGateway;
let base: string;
let endpoint: string;
before(async () => {
  g = await startMergedGateway([{ id: 'wiki', eras: 'both' }, { id: 'notes', eras: 'both' }], (config) => {
    config.gateways.push({ id: 'team', visibility: 'private', servers: [{ upstream: 'wiki', identity: 'per_user' }] });
    config.gateways.push({ id: 'filtered', visibility: 'private', servers: [{ upstream: 'notes', identity: 'per_user', tools: { allow: ['echo'] } }] });
  });
  base = g.registry.url;
  endpoint = `${base}/mcp/team/wiki`;
});
after(() => g.close());

const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

/** Save a personal credential for the wiki upstream over the self-service API, as the person does. */
async function saveCredential(token: string, secret: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/me/identities`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ upstream: 'wiki', token: secret }) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

async function removeCredential(token: string, id: string): Promise<void> {
  const res = await fetch(`${base}/api/v1/me/identities/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 204);
}

const rawHeaders = (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' });

/** A 2025-11-25 session opened on the stand-in (not connected yet) over plain HTTP: its id. */
async function openStandInSession(token: string): Promise<string> {
  const init = await fetch(endpoint, {
    method: 'POST',
    headers: rawHeaders(token),
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw-client', version: '1' } } }),
  });
  assert.equal(init.status, 200);
  assert.match(await init.text(), /keygate|wiki/);
  return init.headers.get('mcp-session-id')!;
}

const listOn = (token: string, session: string) =>
  fetch(endpoint, { method: 'POST', headers: { ...rawHeaders(token), 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });

describe('a 2025 session opened before connecting, on /mcp/{gateway}/{server}', () => {
  test('goes on after the person connects: the same SDK client, on the same session, calls the real tool with their credential', async () => {
    const { client, transport } = await connect(endpoint, '2025-11-25', { token: g.aliceToken });
    let identity: string | undefined;
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['keygate_connect_account'], 'the stand-in answers while not connected');
      assert.equal((await client.callTool({ name: 'whoami', arguments: {} })).isError, true);
      const session = transport.sessionId;
      assert.ok(session);

      identity = await saveCredential(g.aliceToken, 'alice-wiki-secret');

      assert.equal(text(await client.callTool({ name: 'whoami', arguments: {} })), 'Bearer alice-wiki-secret');
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'), "the upstream's own tools now");
      assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'still here' } })), 'still here');
      assert.equal(transport.sessionId, session, 'the client kept its session id');

      // Opened once, on the client's behalf, with the client's own initialize; never with the inbound token.
      const opened = g.upstreams.wiki!.requests.filter((r) => r.rpc === 'initialize' && r.authorization === 'Bearer alice-wiki-secret');
      assert.equal(opened.length, 1);
      assert.equal((opened[0]!.body as { params: { clientInfo: { name: string } } }).params.clientInfo.name, 'test-2025-11-25');
      const upstreamSession = g.upstreams.wiki!.requests.find((r) => r.rpc === 'tools/call' && r.authorization === 'Bearer alice-wiki-secret')?.sessionId;
      assert.ok(upstreamSession && upstreamSession !== session, 'the upstream has its own session id, which the client never sees');
      assert.ok(!JSON.stringify(g.upstreams.wiki!.requests).includes(g.aliceToken), 'never the inbound token');

      // DELETE ends the upstream session too.
      await transport.terminateSession();
      assert.ok(g.upstreams.wiki!.requests.some((r) => r.http === 'DELETE' && r.sessionId === upstreamSession), 'the upstream session was ended');
    } finally {
      await client.close();
      if (identity) await removeCredential(g.aliceToken, identity);
    }
  });

  test('over plain HTTP: the next request on the id is answered by the upstream, under the same id', async () => {
    const session = await openStandInSession(g.aliceToken);
    assert.equal((await listOn(g.aliceToken, session)).status, 200, 'the stand-in answers while not connected');
    const identity = await saveCredential(g.aliceToken, 'alice-wiki-secret-2');
    try {
      const res = await listOn(g.aliceToken, session);
      assert.equal(res.status, 200);
      assert.ok([null, session].includes(res.headers.get('mcp-session-id')), 'no other session id is handed out');
      assert.match(await res.text(), /"name":"whoami"/);
    } finally {
      await removeCredential(g.aliceToken, identity);
    }
  });

  test('is its caller\'s only: another user (connected or not) presenting the id gets 404, and nothing reaches the upstream for them', async () => {
    const session = await openStandInSession(g.aliceToken);
    const alices = await saveCredential(g.aliceToken, 'alice-wiki-secret-3');
    try {
      const bobUnconnected = await listOn(g.bobToken, session);
      assert.equal(bobUnconnected.status, 404);
      assert.deepEqual(((await bobUnconnected.json()) as { error: { data: unknown } }).error.data, { step: 'gateway', reason: 'unknown_session' });
      const bobs = await saveCredential(g.bobToken, 'bob-wiki-secret');
      try {
        const before = g.upstreams.wiki!.requests.length;
        const stolen = await listOn(g.bobToken, session);
        assert.equal(stolen.status, 404);
        assert.deepEqual(((await stolen.json()) as { error: { data: unknown } }).error.data, { step: 'gateway', reason: 'unknown_session' });
        assert.equal(g.upstreams.wiki!.requests.length, before, 'nothing was forwarded, no session was opened for bob');
      } finally {
        await removeCredential(g.bobToken, bobs);
      }
      // A forged id (another nonce under alice's MAC) is no better.
      const [id, mac] = [session.slice(0, session.lastIndexOf('.')), session.slice(session.lastIndexOf('.') + 1)];
      const forged = `${Buffer.from(Buffer.from(id, 'base64url').toString().replace(/;url=0;[^;]+/, ';url=0;forgednonce0000000000')).toString('base64url')}.${mac}`;
      assert.equal((await listOn(g.aliceToken, forged)).status, 404);
      assert.equal((await listOn(g.aliceToken, session)).status, 200, 'alice herself goes on');
    } finally {
      await removeCredential(g.aliceToken, alices);
    }
  });
});

describe('the placeholder tool on a raw per-user endpoint with a tool filter', () => {
  test('is answered by the stand-in (how to connect), not refused by the filter, which judges only the upstream\'s tools', async () => {
    const { client } = await connect(`${base}/mcp/filtered/notes`, '2026-07-28', { token: g.bobToken });
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['keygate_connect_account']);
      const answer = await client.callTool({ name: 'keygate_connect_account', arguments: {} });
      assert.equal(answer.isError, true);
      assert.match(text(answer), /connect/i);
      // The filter still judges the upstream's tools: whoami is not allowed here, connected or not.
      await assert.rejects(client.callTool({ name: 'whoami', arguments: {} }), (err: { data?: { reason?: string } }) => err.data?.reason === 'tool_not_allowed');
    } finally {
      await client.close();
    }
  });
});
