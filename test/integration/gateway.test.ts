import assert from 'node:assert/strict';
import { generateKeyPair, SignJWT } from 'jose';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { startGatedUpstream } from '../helpers/gated-upstream.ts';
import { signIn } from '../helpers/oauth.ts';
import { startRegistry } from '../helpers/registry.ts';
import type { AuditEntry, AuditLog } from '../../server/audit/audit.ts';

// The request path of /mcp/{gateway}/{server}: inbound validation, gateway,
// assignment, credential, forwarding; each failure says which step and why.

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

function callTool(url: string, headers: Record<string, string> = {}, id: number | string = 7) {
  return fetch(url, {
    method: 'POST',
    headers: { ...MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: meta } }),
  });
}

async function jsonRpcError(res: Response) {
  const body = (await res.json()) as { id: unknown; error: { code: number; message: string; data: { step: string; reason: string } } };
  return body;
}

let f: Fixture;
let base: string;
let aliceToken: string;
before(async () => {
  f = await startFixture();
  base = f.registry.url;
  aliceToken = (await signIn(base, ALICE)).tokens.access_token;
});
after(() => f.close());

describe('inbound validation', () => {
  test('a private gateway answers a caller without a token with 401 and the RFC 9728 challenge', async () => {
    const res = await callTool(`${base}/mcp/team/demo`);
    assert.equal(res.status, 401);
    // RFC 6750 §3.1: no error code for a request without a token; MCP authorization: the scopes this endpoint needs.
    assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp/team/demo", scope="mcp:read mcp:write"`);
    const body = await jsonRpcError(res);
    assert.equal(body.id, 7);
    assert.equal(body.error.data.step, 'inbound');
  });

  test('a valid token reaches the upstream, which sees the shared credential and neither the token nor the cookie', async () => {
    const before = f.upstream.seen.length;
    const res = await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${aliceToken}`, cookie: 'session=secret' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { result: { content: unknown } };
    assert.deepEqual(body.result.content, [{ type: 'text', text: 'hi' }]);
    const seen = f.upstream.seen.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, `Bearer ${f.apiKey}`);
    assert.ok(!seen[0]!.headerNames.includes('cookie'));
    assert.equal(seen[0]!.mcpMethod, 'tools/call', 'Mcp-* headers are forwarded');
  });

  test('an expired token is invalid_token', async () => {
    const key = f.registry.registry.signingKey;
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ scope: 'mcp:read', client_id: 'x' })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(base)
      .setSubject('alice')
      .setAudience(base)
      .setIssuedAt(now - 7200)
      .setExpirationTime(now - 3600)
      .setJti('expired-1')
      .sign(key.privateKey);
    const res = await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${expired}` });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate')!, /error="invalid_token", error_description="the access token has expired"/);
    assert.match(res.headers.get('www-authenticate')!, /resource_metadata="/);
  });

  test('a token issued for another resource is refused', async () => {
    const other = (await signIn(base, ALICE, { resource: `${base}/mcp/open/tools` })).tokens.access_token;
    const res = await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${other}` });
    assert.equal(res.status, 401);
    assert.match((await jsonRpcError(res)).error.message, /issued for another resource/);
    // ...while it works where it belongs.
    assert.equal((await callTool(`${base}/mcp/open/tools`, { authorization: `Bearer ${other}` })).status, 200);
  });

  test('a token signed by another key, or from another issuer, is refused', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const key = f.registry.registry.signingKey;
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).setIssuer(base).setSubject('alice').setAudience(base).setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).setIssuer('https://other.example').setSubject('alice').setAudience(base).setIssuedAt(now).setExpirationTime(now + 600).sign(key.privateKey);
    for (const token of [forged, foreign, 'opaque-garbage']) {
      assert.equal((await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${token}` })).status, 401);
    }
    assert.equal((await callTool(`${base}/mcp/team/demo`, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })).status, 401);
  });

  test('a public gateway serves anonymous callers', async () => {
    const client = new Client({ name: 'anon', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/open/tools`)));
    const result = await client.callTool({ name: 'echo', arguments: { message: 'anonymous' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'anonymous' }]);
    await client.close();
  });
});

describe('routing', () => {
  test('an unknown gateway or server is a 404 JSON-RPC error naming the step, with the request id', async () => {
    const gw = await callTool(`${base}/mcp/nope/demo`, { authorization: `Bearer ${aliceToken}` }, 'abc');
    assert.equal(gw.status, 404);
    const gwBody = await jsonRpcError(gw);
    assert.equal(gwBody.id, 'abc');
    assert.deepEqual(gwBody.error.data, { step: 'gateway', reason: 'unknown_gateway' });
    const server = await callTool(`${base}/mcp/team/nope`, { authorization: `Bearer ${aliceToken}` });
    assert.equal(server.status, 404);
    assert.deepEqual((await jsonRpcError(server)).error.data, { step: 'assignment', reason: 'unknown_server' });
  });

  test('an anonymous caller cannot tell a private gateway from one that does not exist: the same 401, challenge and metadata document', async () => {
    const answer = async (gateway: string, headers: Record<string, string> = {}) => {
      const res = await callTool(`${base}/mcp/${gateway}/demo`, headers);
      const body = await jsonRpcError(res);
      const challenge = res.headers.get('www-authenticate')!.replaceAll(gateway, 'GW');
      const prm = await fetch(`${base}/.well-known/oauth-protected-resource/mcp/${gateway}/demo`);
      const doc = (await prm.json()) as Record<string, unknown>;
      return { status: res.status, error: { ...body.error, message: body.error.message.replaceAll(gateway, 'GW') }, challenge, prm: [prm.status, { ...doc, resource: String(doc.resource).replace(gateway, 'GW') }] };
    };
    const privateOne = await answer('team');
    assert.equal(privateOne.status, 401);
    assert.deepEqual(await answer('no-such-gw'), privateOne, 'no token');
    const forged = { authorization: 'Bearer forged.token.value' };
    const privateForged = await answer('team', forged);
    assert.equal(privateForged.status, 401);
    assert.deepEqual(await answer('no-such-gw', forged), privateForged, 'an invalid token');
    // Someone signed in is told plainly (routing, above).
    assert.equal((await callTool(`${base}/mcp/no-such-gw/demo`, { authorization: `Bearer ${aliceToken}` })).status, 404);
  });

  test('/mcp/{gateway} serves a gateway with one server', async () => {
    const res = await callTool(`${base}/mcp/team`, { authorization: `Bearer ${aliceToken}` });
    assert.equal(res.status, 200);
  });

  test('methods other than POST, GET and DELETE are refused', async () => {
    const res = await fetch(`${base}/mcp/team/demo`, { method: 'PUT', headers: { authorization: `Bearer ${aliceToken}` } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST, DELETE');
  });

  test('a browser origin other than the registry is refused (DNS rebinding); the registry origin gets CORS', async () => {
    const evil = await callTool(`${base}/mcp/open/tools`, { origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal((await jsonRpcError(evil)).error.data.reason, 'origin_not_allowed');
    const same = await callTool(`${base}/mcp/open/tools`, { origin: base });
    assert.equal(same.status, 200);
    assert.equal(same.headers.get('access-control-allow-origin'), base);
    const preflight = await fetch(`${base}/mcp/open/tools`, { method: 'OPTIONS', headers: { origin: base, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers')!, /mcp-session-id/);
  });
});

describe('2025-era sessions through the gateway', () => {
  async function initialize(token: string) {
    const res = await fetch(`${base}/mcp/team/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(res.status, 200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  }

  test('the session id is bound to the caller: another user, or a tampered id, gets 404', async () => {
    const session = await initialize(aliceToken);
    const upstreamIds = new Set(f.upstream.seen.map((s) => s.sessionId).filter(Boolean));
    assert.ok(session && !upstreamIds.has(session), 'the client never sees the raw upstream id');
    const bobToken = (await signIn(base, BOB)).tokens.access_token;
    const list = (token: string, id: string) =>
      fetch(`${base}/mcp/team/demo`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25', accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
    assert.equal((await list(aliceToken, session)).status, 200);
    const stolen = await list(bobToken, session);
    assert.equal(stolen.status, 404);
    assert.equal((await jsonRpcError(stolen)).error.data.reason, 'unknown_session');
    assert.equal((await list(aliceToken, `${session.slice(0, -2)}xx`)).status, 404);
  });

  test('GET opens the SSE stream and DELETE ends the session', async () => {
    const session = await initialize(aliceToken);
    const headers = { authorization: `Bearer ${aliceToken}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
    const controller = new AbortController();
    const stream = await fetch(`${base}/mcp/team/demo`, { headers: { ...headers, accept: 'text/event-stream' }, signal: controller.signal });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type')!, /text\/event-stream/);
    const end = await fetch(`${base}/mcp/team/demo`, { method: 'DELETE', headers });
    assert.equal(end.status, 200);
    controller.abort();
    const after = await fetch(`${base}/mcp/team/demo`, {
      method: 'POST',
      headers: { ...headers, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
    });
    assert.equal(after.status, 404, 'the upstream ended the session');
  });
});

describe('forwarding', () => {
  test('SSE is relayed as it arrives, not buffered until the response ends', { timeout: 20_000 }, async () => {
    const gated = await startGatedUpstream();
    const r = await startRegistry({ upstreams: [{ id: 'gated', url: gated.url }], gateways: [{ id: 'g', visibility: 'public', servers: [{ upstream: 'gated', identity: 'shared' }] }] });
    try {
      const client = new Client({ name: 'sse', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${r.url}/mcp/g/gated`)));
      let progressSeen = false;
      const result = await client.callTool({ name: 'hold', arguments: {} }, {
        onprogress: () => {
          // Only a relayed (unbuffered) notification can release the upstream.
          progressSeen = true;
          gated.release();
        },
      });
      assert.ok(progressSeen);
      assert.deepEqual(result.content, [{ type: 'text', text: 'released' }]);
      await client.close();
    } finally {
      await r.close();
      await gated.close();
    }
  });

  test('an unreachable upstream is a 502 naming the upstream step', async () => {
    const r = await startRegistry({ upstreams: [{ id: 'gone', url: 'http://127.0.0.1:9/mcp' }], gateways: [{ id: 'g', visibility: 'public', servers: [{ upstream: 'gone', identity: 'shared' }] }] });
    try {
      const res = await callTool(`${r.url}/mcp/g/gone`);
      assert.equal(res.status, 502);
      assert.deepEqual((await jsonRpcError(res)).error.data, { step: 'upstream', reason: 'upstream_unreachable' });
    } finally {
      await r.close();
    }
  });

  test('an upstream that refuses the shared credential is a 502; its challenge is not passed to the caller', async () => {
    const r = await startRegistry(
      {
        upstreams: [{ id: 'demo', url: f.upstream.url, credential: { type: 'bearer', token_env: 'WRONG_KEY' } }],
        gateways: [{ id: 'g', visibility: 'public', servers: [{ upstream: 'demo', identity: 'shared' }] }],
      },
      { WRONG_KEY: 'not-the-key' },
    );
    try {
      const res = await callTool(`${r.url}/mcp/g/demo`);
      assert.equal(res.status, 502);
      assert.equal(res.headers.get('www-authenticate'), null);
      assert.equal((await jsonRpcError(res)).error.data.reason, 'upstream_rejected_credential');
      assert.ok(!r.log.lines.join('\n').includes('not-the-key'), 'the credential is never logged');
    } finally {
      await r.close();
    }
  });

  test('a disabled shared identity stops the next call', async () => {
    await f.registry.store.update('identities', 'svc', (current) => ({ ...(current as object), disabled: true }));
    try {
      const res = await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${aliceToken}` });
      assert.equal(res.status, 403);
      assert.deepEqual((await jsonRpcError(res)).error.data, { step: 'vault', reason: 'identity_disabled' });
    } finally {
      await f.registry.store.update('identities', 'svc', (current) => ({ ...(current as object), disabled: false }));
    }
    assert.equal((await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${aliceToken}` })).status, 200);
  });
});

describe('audit', () => {
  test('each MCP request is recorded with principal, gateway, upstream, identity, method, tool, outcome and latency; never a secret', async () => {
    const audit = f.registry.registry.audit as AuditLog;
    const entries = async () => {
      const all: AuditEntry[] = [];
      for await (const entry of audit.read({ kind: 'mcp' }, { order: 'asc' })) if (entry.kind !== 'admin') all.push(entry);
      return all;
    };
    const before = (await entries()).length;
    assert.equal((await callTool(`${base}/mcp/team/demo`, { authorization: `Bearer ${aliceToken}` })).status, 200);
    assert.equal((await callTool(`${base}/mcp/team/nope`, { authorization: `Bearer ${aliceToken}` })).status, 404);
    // A 2025-era request without Mcp-* headers: method and tool come from the body.
    await fetch(`${base}/mcp/open/tools`, { method: 'POST', headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } }) });
    await new Promise((r) => setTimeout(r, 50));
    const recorded = await entries();
    const [ok, missing, legacy] = recorded.slice(before);
    assert.deepEqual(
      { subject: ok!.subject, gateway: ok!.gateway, server: ok!.server, upstream: ok!.upstream, identity: ok!.identity, method: ok!.method, name: ok!.name, outcome: ok!.outcome, status: ok!.status },
      { subject: 'alice', gateway: 'team', server: 'demo', upstream: 'demo', identity: 'svc', method: 'tools/call', name: 'echo', outcome: 'ok', status: 200 },
    );
    assert.ok(ok!.latency_ms >= 0 && typeof ok!.client_id === 'string');
    assert.equal(missing!.outcome, 'unknown_server');
    assert.equal(legacy!.subject, undefined);
    assert.equal(legacy!.method, 'tools/call');
    assert.equal(legacy!.name, 'add');
    const text = JSON.stringify(recorded);
    assert.ok(!text.includes(aliceToken) && !text.includes(f.apiKey), 'no token and no credential in the audit');
  });
});

describe('static bearer tokens (auth.type: bearer)', () => {
  test('any configured token, of any length, is accepted; others are refused', async () => {
    const tokens = ['short', 'a-much-longer-static-token-with-many-characters-0123456789'];
    const r = await startRegistry({
      auth: { type: 'bearer', bearer: { valid_tokens: tokens } },
      upstreams: [{ id: 'demo', url: f.upstream.url, credential: { type: 'bearer', token_env: 'KEY' } }],
      gateways: [{ id: 'g', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared' }] }],
    }, { KEY: f.apiKey });
    try {
      for (const t of tokens) assert.equal((await callTool(`${r.url}/mcp/g/demo`, { authorization: `Bearer ${t}` })).status, 200, t);
      for (const t of ['shor', 'shortx', 'x'.repeat(500)]) assert.equal((await callTool(`${r.url}/mcp/g/demo`, { authorization: `Bearer ${t}` })).status, 401, t);
    } finally {
      await r.close();
    }
  });
});

describe('GET /api/v1/gateways', () => {
  type Listing = { gateways: { id: string; mcp_url: string; visibility: string; servers: { name: string; identity: string; mcp_url: string }[] }[] };

  test('anonymous callers see public gateways; signed-in callers see private ones too', async () => {
    const anon = (await (await fetch(`${base}/api/v1/gateways`)).json()) as Listing;
    assert.deepEqual(anon.gateways.map((g) => g.id), ['open']);
    const signedIn = (await (await fetch(`${base}/api/v1/gateways`, { headers: { authorization: `Bearer ${aliceToken}` } })).json()) as Listing;
    assert.deepEqual(signedIn.gateways.map((g) => g.id).sort(), ['open', 'team']);
    const team = signedIn.gateways.find((g) => g.id === 'team')!;
    assert.equal(team.mcp_url, `${base}/mcp/team`);
    assert.deepEqual(team.servers, [{ name: 'demo', upstream: 'demo', upstream_name: 'demo', identity: 'shared', mcp_url: `${base}/mcp/team/demo` }]);
  });

  test('an invalid token is a 401 with the OAuth error form and the challenge', async () => {
    const res = await fetch(`${base}/api/v1/gateways`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_token');
    assert.match(res.headers.get('www-authenticate')!, /resource_metadata="[^"]+\/.well-known\/oauth-protected-resource"/);
  });

  test('/healthz answers ok while the store is readable', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });
});
