import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, exportPKCS8, generateKeyPair } from 'jose';
import { memoryLogger } from '../../server/log.ts';
import { loadKeyRing, rotateGeneratedKey } from '../../server/oauth/signing-keys.ts';
import { parseConfig } from '../../server/config/load.ts';
import { Agent, request } from 'node:http';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { registerClient, signIn, tokenRequest } from '../helpers/oauth.ts';
import { startRegistry } from '../helpers/registry.ts';

// What happens to tokens after they are issued: revocation (RFC 7009),
// introspection (RFC 7662), and the keys that sign them.

let f: Fixture;
let base: string;
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

before(async () => {
  f = await startFixture((config) => {
    config.oauth_server.clients = [
      { client_id: 'resource-server', name: 'A resource server', client_secret_env: 'RS_SECRET', redirect_uris: [], resource_server: true },
      { client_id: 'plain-confidential', name: 'A confidential client', client_secret_env: 'PLAIN_SECRET', redirect_uris: [] },
    ];
  }, { RS_SECRET: 'rs-secret-value', PLAIN_SECRET: 'plain-secret-value' });
  base = f.registry.url;
});
after(() => f.close());

function form(path: string, params: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, { method: 'POST', body: new URLSearchParams(params), headers });
}
const callApi = (token: string) => fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });

describe('revocation (RFC 7009)', () => {
  test('revoking an access token stops it at once, cached or not', async () => {
    const { clientId, tokens } = await signIn(base, ALICE);
    assert.equal((await callApi(tokens.access_token)).status, 200, 'valid and now cached');
    const res = await form('/oauth/revoke', { token: tokens.access_token, client_id: clientId });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const after = await callApi(tokens.access_token);
    assert.equal(after.status, 401);
    assert.match(after.headers.get('www-authenticate')!, /was revoked \(RFC 7009\)/);
    // The whole grant ended: its refresh token too.
    const refresh = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
    assert.equal(refresh.status, 400);
    assert.equal(((await refresh.json()) as { error: string }).error, 'invalid_grant');
  });

  test('revoking a refresh token ends its whole grant: the newest refresh token and every access token of it, cached or not', async () => {
    const { clientId, tokens } = await signIn(base, ALICE);
    const rotated = (await (await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token })).json()) as { access_token: string; refresh_token: string };
    for (const token of [tokens.access_token, rotated.access_token]) assert.equal((await callApi(token)).status, 200, 'valid and now cached');
    assert.equal((await form('/oauth/revoke', { token: rotated.refresh_token, token_type_hint: 'refresh_token', client_id: clientId })).status, 200);
    const refused = await tokenRequest(base, { grant_type: 'refresh_token', client_id: clientId, refresh_token: rotated.refresh_token });
    assert.equal(refused.status, 400);
    for (const token of [tokens.access_token, rotated.access_token]) {
      const res = await callApi(token);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate')!, /error="invalid_token", error_description="the access token was revoked \(RFC 7009\)"/);
    }
  });

  test('on one keep-alive connection to the MCP endpoint, each call is judged by its own token: a forged one after a good one is refused, a revoked one at once', async () => {
    // The gateway remembers a connection's last Authorization header to skip its hash; nothing it decides may follow from that.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    let id = 0;
    const call = (authorization: string) =>
      new Promise<{ status: number; body: string; challenge: string | undefined }>((resolve, reject) => {
        const body = JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'test', version: '1' } } } });
        const req = request(`${base}/mcp/team/demo`, { method: 'POST', agent, headers: { authorization, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' } }, (res) => {
          ports.add(req.socket!.localPort!);
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text, challenge: res.headers['www-authenticate'] }));
        });
        req.on('error', reject).end(body);
      });
    try {
      const alice = await signIn(base, ALICE);
      const bob = await signIn(base, BOB);
      const good = `Bearer ${alice.tokens.access_token}`;
      assert.equal((await call(good)).status, 200);
      // The same length, the first character of the signature changed: not Alice's token. (Not the last: base64url's
      // last character may carry bits no byte keeps, so another character there can decode to the same signature.)
      const at = good.lastIndexOf('.') + 1;
      const forged = await call(`${good.slice(0, at)}${good[at] === 'A' ? 'B' : 'A'}${good.slice(at + 1)}`);
      assert.equal(forged.status, 401);
      assert.match(forged.challenge!, /error="invalid_token"/);
      assert.equal((await call(good)).status, 200, 'her own token again');
      // Bob's token on her connection is his: he holds mcp:read only, which a tools/call does not do with.
      const asBob = await call(`Bearer ${bob.tokens.access_token}`);
      assert.equal(asBob.status, 403, "Bob's token on her connection is judged as his");
      assert.match(asBob.challenge!, /error="insufficient_scope"/);
      assert.equal((await call(good)).status, 200);
      assert.equal((await form('/oauth/revoke', { token: alice.tokens.access_token, client_id: alice.clientId })).status, 200);
      const revoked = await call(good);
      assert.equal(revoked.status, 401);
      assert.match(revoked.challenge!, /was revoked \(RFC 7009\)/);
      assert.equal(ports.size, 1, 'every call went over the one connection');
    } finally {
      agent.destroy();
    }
  });

  test('an unknown or malformed token is not an error (§2.2)', async () => {
    const { client_id } = await registerClient(base);
    for (const token of ['never-issued', 'a.b.c']) assert.equal((await form('/oauth/revoke', { token, client_id })).status, 200);
  });

  test("a client may not revoke another client's token", async () => {
    const { tokens } = await signIn(base, ALICE);
    const other = await registerClient(base);
    const res = await form('/oauth/revoke', { token: tokens.refresh_token, client_id: other.client_id });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'unauthorized_client');
    const stillGood = await signIn(base, ALICE);
    assert.equal((await callApi(stillGood.tokens.access_token)).status, 200);
  });

  test('revocation needs client authentication and a token', async () => {
    assert.equal((await form('/oauth/revoke', { token: 'x' })).status, 401);
    assert.equal((await form('/oauth/revoke', { client_id: 'resource-server' }, basic('resource-server', 'rs-secret-value'))).status, 400);
  });
});

describe('introspection (RFC 7662)', () => {
  test('a resource server learns whether tokens are active, and what they carry', async () => {
    const { clientId, tokens } = await signIn(base, ALICE, { resource: `${base}/mcp/team` });
    const auth = basic('resource-server', 'rs-secret-value');
    const access = (await (await form('/oauth/introspect', { token: tokens.access_token }, auth)).json()) as Record<string, unknown>;
    assert.equal(access.active, true);
    assert.equal(access.sub, 'alice');
    assert.equal(access.client_id, clientId);
    assert.equal(access.aud, `${base}/mcp/team`);
    assert.equal(access.scope, 'mcp:read mcp:write');
    const refresh = (await (await form('/oauth/introspect', { token: tokens.refresh_token }, auth)).json()) as Record<string, unknown>;
    assert.equal(refresh.active, true);
    assert.equal(refresh.token_type, 'refresh_token');
    for (const token of ['garbage', 'a.b.c']) assert.deepEqual(await (await form('/oauth/introspect', { token }, auth)).json(), { active: false });
    await form('/oauth/revoke', { token: tokens.access_token, client_id: clientId });
    assert.deepEqual(await (await form('/oauth/introspect', { token: tokens.access_token }, auth)).json(), { active: false });
  });

  test("a client an admin did not make a resource server may not introspect (RFC 7662 §4), even one that registered itself as one: 403 unauthorized_client, nothing about the token", async () => {
    const { tokens } = await signIn(base, ALICE);
    const registered = (await (await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://rs.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic', resource_server: true }) })).json()) as Record<string, unknown>;
    assert.equal(registered.resource_server, undefined, 'RFC 7591 §2: unknown metadata is ignored, not registered');
    const callers = [basic(registered.client_id as string, registered.client_secret as string), basic('plain-confidential', 'plain-secret-value')];
    for (const auth of callers) {
      for (const token of [tokens.refresh_token, tokens.access_token]) {
        const res = await form('/oauth/introspect', { token }, auth);
        assert.equal(res.status, 403);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.deepEqual(await res.json(), { error: 'unauthorized_client', error_description: 'this client is not a resource server allowed to introspect tokens (RFC 7662 §4); an admin can make it one' });
      }
    }
  });

  test('a public client, or a wrong secret, may not introspect', async () => {
    const { clientId, tokens } = await signIn(base, ALICE);
    assert.equal((await form('/oauth/introspect', { token: tokens.access_token, client_id: clientId })).status, 401);
    assert.equal((await form('/oauth/introspect', { token: tokens.access_token }, basic('resource-server', 'wrong'))).status, 401);
  });
});

describe('refresh follows the account', () => {
  test('a refresh grants only the scopes the user still holds', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-shrink-'));
    const users = (scopes: string[]) => ({ oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'P', scopes }] } } });
    try {
      const first = await startRegistry(users(['mcp:read', 'mcp:write']), { P: ALICE.password }, { dataDir });
      const { clientId, tokens } = await signIn(first.url, ALICE);
      assert.equal(tokens.scope, 'mcp:read mcp:write');
      await first.close();
      const second = await startRegistry({ ...users(['mcp:read']), server: { public_url: first.url } }, { P: ALICE.password }, { dataDir });
      try {
        const res = await tokenRequest(second.url, { grant_type: 'refresh_token', client_id: clientId, refresh_token: tokens.refresh_token });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as { scope: string }).scope, 'mcp:read');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('signing keys', () => {
  for (const algorithm of ['RS256', 'EdDSA'] as const) {
    test(`${algorithm} tokens are issued, published in the JWKS and accepted`, async () => {
      const r = await startRegistry({ oauth_server: { signing: { algorithm }, builtin: { users: [{ username: 'alice', password_env: 'P', scopes: ['mcp:read'] }] } } }, { P: ALICE.password });
      try {
        const { tokens } = await signIn(r.url, ALICE);
        const header = decodeProtectedHeader(tokens.access_token);
        assert.equal(header.alg, algorithm);
        const jwks = (await (await fetch(`${r.url}/oauth/jwks`)).json()) as { keys: { kid: string; alg: string }[] };
        assert.deepEqual(jwks.keys.map((k) => [k.kid, k.alg]), [[header.kid, algorithm]]);
        assert.equal((await fetch(`${r.url}/api/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);
      } finally {
        await r.close();
      }
    });
  }

  test('after a rotation the new key signs, the old one still verifies, and both are in the JWKS', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-rotate-'));
    const config = { oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'P' }] } } };
    try {
      const first = await startRegistry(config, { P: ALICE.password }, { dataDir });
      const old = (await signIn(first.url, ALICE)).tokens.access_token;
      const oldKid = decodeProtectedHeader(old).kid;
      await first.close();
      const newKid = await rotateGeneratedKey(dataDir, 'ES256');
      const second = await startRegistry({ ...config, server: { public_url: first.url } }, { P: ALICE.password }, { dataDir });
      try {
        const jwks = (await (await fetch(`${second.url}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
        assert.deepEqual(jwks.keys.map((k) => k.kid), [newKid, oldKid]);
        const fresh = (await signIn(second.url, ALICE)).tokens.access_token;
        assert.equal(decodeProtectedHeader(fresh).kid, newKid);
        // The old token was issued for the first registry's URL; this one has the same public_url.
        assert.equal((await fetch(`${second.url}/api/v1/me`, { headers: { authorization: `Bearer ${old}` } })).status, 200);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a retired key is dropped once the tokens it signed have expired', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-retire-'));
    try {
      const config = parseConfig({ oauth_server: { token_lifetime: '1h' } }, '(test)');
      const t0 = 1_800_000_000;
      const firstKid = await rotateGeneratedKey(dataDir, 'ES256', t0);
      const secondKid = await rotateGeneratedKey(dataDir, 'ES256', t0 + 60);
      const during = await loadKeyRing(config.oauth_server, dataDir, memoryLogger(), t0 + 1800);
      assert.deepEqual(during.all.map((k) => k.kid), [secondKid, firstKid]);
      const later = await loadKeyRing(config.oauth_server, dataDir, memoryLogger(), t0 + 60 + 3601);
      assert.deepEqual(later.all.map((k) => k.kid), [secondKid]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('keys from files: key_file signs, previous_keys verify; a token signed by a key outside the ring is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keygate-keyfile-'));
    try {
      const pem = async () => exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey);
      writeFileSync(join(dir, 'old.pem'), await pem());
      writeFileSync(join(dir, 'new.pem'), await pem());
      const users = { builtin: { users: [{ username: 'alice', password_env: 'P' }] } };
      const a = await startRegistry({ oauth_server: { ...users, signing: { key_file: join(dir, 'old.pem') } } }, { P: ALICE.password });
      const oldToken = (await signIn(a.url, ALICE)).tokens.access_token;
      await a.close();
      const b = await startRegistry({ server: { public_url: a.url }, oauth_server: { ...users, signing: { key_file: join(dir, 'new.pem'), previous_keys: [{ key_file: join(dir, 'old.pem') }] } } }, { P: ALICE.password });
      try {
        assert.equal(((await (await fetch(`${b.url}/oauth/jwks`)).json()) as { keys: unknown[] }).keys.length, 2);
        assert.equal((await fetch(`${b.url}/api/v1/me`, { headers: { authorization: `Bearer ${oldToken}` } })).status, 200);
      } finally {
        await b.close();
      }
      const c = await startRegistry({ server: { public_url: a.url }, oauth_server: { ...users, signing: { key_file: join(dir, 'new.pem') } } }, { P: ALICE.password });
      try {
        assert.equal((await fetch(`${c.url}/api/v1/me`, { headers: { authorization: `Bearer ${oldToken}` } })).status, 401, 'once removed from previous_keys, the old key no longer verifies');
      } finally {
        await c.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
