import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createRegistry } from '../../server/app.ts';
import { parseConfig } from '../../server/config/load.ts';
import { memoryLogger } from '../../server/log.ts';
import { openStore } from '../../server/store/index.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { foreignToken } from '../helpers/oidc-provider.ts';

// Every fetch inbound validation makes (discovery, JWKS, introspection,
// UserInfo, a validation endpoint) goes through the outbound guard:
// link-local and cloud-metadata addresses never, loopback and private
// networks only when outbound.* allows them. A configured literal address is
// refused at start; a name or a discovered URL when it is fetched (503, and a
// log line that says why). Small servers here play IdPs that misbehave.

const closers: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

/** Build a registry without a socket: start-up refusals throw from here. */
async function build(auth: Record<string, unknown>, outbound: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-ssrf-'));
  closers.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = parseConfig({ auth, outbound }, '(test)', {});
  const store = await openStore(config.storage, dataDir);
  closers.push(() => store.close());
  return createRegistry({ config, publicUrl: 'http://127.0.0.1:1', dataDir, store, log: memoryLogger(), env: {} });
}

async function serve(handler: RequestListener): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function registry(auth: Record<string, unknown>, outbound: Record<string, unknown> = { allow_loopback: true }): Promise<TestRegistry> {
  const r = await startRegistry({ auth, outbound });
  closers.push(() => r.close());
  return r;
}

async function me(r: TestRegistry, token: string) {
  const res = await fetch(`${r.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { error: string; error_description: string }, log: () => r.log.lines.join('\n') };
}

const now = () => Math.floor(Date.now() / 1000);
const someJwt = (iss: string) => foreignToken({ iss, sub: 'x', aud: 'http://127.0.0.1:1', iat: now(), exp: now() + 60 }, { kid: 'k1' });

describe('configured addresses the outbound policy refuses stop start-up, naming the key', () => {
  test('a jwks_url at the cloud metadata address (169.254.169.254) is refused', async () => {
    await assert.rejects(build({ type: 'oauth', oauth: { jwks_url: 'https://169.254.169.254/latest/meta-data/jwks', audience: 'api' } }), /^Error: auth\.oauth\.jwks_url: refusing to fetch https:\/\/169\.254\.169\.254: 169\.254\.169\.254 is a link-local, metadata or reserved address/);
  });

  test('a discovery_url on loopback is refused without outbound.allow_loopback', async () => {
    await assert.rejects(build({ type: 'oauth', oauth: { discovery_url: 'http://127.0.0.1:9/realms/x' } }), /auth\.oauth\.discovery_url: refusing to fetch http:\/\/127\.0\.0\.1:9: 127\.0\.0\.1 is a loopback address \(allow with outbound\.allow_loopback\)/);
  });

  test('an introspection_url at the AWS IPv6 metadata address (fd00:ec2::254) is refused, even with private networks allowed', async () => {
    await assert.rejects(
      build({ type: 'oauth', oauth: { introspection_url: 'https://[fd00:ec2::254]/introspect', client_id: 'c', client_secret: 's' } }, { allow_private_networks: true }),
      /auth\.oauth\.introspection_url: refusing to fetch https:\/\/\[fd00:ec2::254\]/,
    );
  });

  test('a validation_endpoint on a private network is refused without outbound.allow_private_networks', async () => {
    await assert.rejects(build({ type: 'bearer', bearer: { validation_endpoint: 'https://10.1.2.3/validate' } }), /auth\.bearer\.validation_endpoint: .*10\.1\.2\.3 is a private address \(allow with outbound\.allow_private_networks\)/);
  });

  test('a userinfo_url at the Alibaba Cloud metadata address is refused', async () => {
    await assert.rejects(build({ type: 'oauth', oauth: { userinfo_url: 'https://100.100.100.200/userinfo' } }, { allow_private_networks: true }), /auth\.oauth\.userinfo_url: .*100\.100\.100\.200 is a link-local, metadata or reserved address/);
  });
});

describe('addresses found at fetch time', () => {
  test('a discovery_url whose name resolves to loopback is not fetched without outbound.allow_loopback (503)', async () => {
    const idp = await serve((_req, res) => res.writeHead(500).end());
    const port = new URL(idp.url).port;
    const r = await registry({ type: 'oauth', oauth: { discovery_url: `http://localhost:${port}` } }, {});
    const res = await me(r, await someJwt(`http://localhost:${port}`));
    assert.equal(res.status, 503);
    assert.equal(res.body.error, 'temporarily_unavailable');
    assert.match(res.log(), /discovery at http:\/\/localhost:\d+ cannot be used to check a token: refusing to connect to localhost: .*loopback address/);
  });

  test('a discovered jwks_uri at a link-local address is never fetched', async () => {
    let issuer = '';
    const idp = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: 'https://169.254.169.254/keys' })));
    issuer = idp.url;
    const r = await registry({ type: 'oauth', oauth: { discovery_url: issuer } });
    const res = await me(r, await someJwt(issuer));
    assert.equal(res.status, 503);
    assert.match(res.log(), /JWKS of the token's issuer cannot be used to check a token: refusing to fetch https:\/\/169\.254\.169\.254: .*link-local/);
  });

  test('a discovered jwks_uri over plain http to another host is refused', async () => {
    let issuer = '';
    const idp = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: 'http://keys.example.com/jwks' })));
    issuer = idp.url;
    const r = await registry({ type: 'oauth', oauth: { discovery_url: issuer } });
    const res = await me(r, await someJwt(issuer));
    assert.equal(res.status, 503);
    assert.match(res.log(), /its jwks_uri is missing or not an https URL/);
  });

  test('a discovery document naming another issuer is refused (OpenID Connect Discovery §4.3)', async () => {
    const idp = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: 'https://login.evil.example', jwks_uri: 'https://login.evil.example/jwks' })));
    const r = await registry({ type: 'oauth', oauth: { discovery_url: idp.url } });
    const res = await me(r, await someJwt('https://login.evil.example'));
    assert.equal(res.status, 503);
    assert.match(res.log(), /"issuer" property does not match the expected value/);
  });

  test('a JWKS that does not answer within jwks.fetch_timeout is 503, not a hang', async () => {
    const jwks = await serve(() => undefined); // never answers
    const r = await registry({ type: 'oauth', oauth: { jwks_url: `${jwks.url}/jwks`, issuer: 'https://idp.example', audience: 'api', jwks: { fetch_timeout: '1s' } } });
    const started = Date.now();
    const res = await me(r, await someJwt('https://idp.example'));
    assert.equal(res.status, 503);
    assert.ok(Date.now() - started < 5000, 'bounded by the fetch timeout');
    assert.match(res.log(), /JWKS of the token's issuer cannot be used/);
  });

  test('a redirect from the JWKS URL is not followed', async () => {
    const jwks = await serve((_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
    const r = await registry({ type: 'oauth', oauth: { jwks_url: `${jwks.url}/jwks`, issuer: 'https://idp.example', audience: 'api' } });
    const res = await me(r, await someJwt('https://idp.example'));
    assert.equal(res.status, 503);
    assert.match(res.log(), /JWKS of the token's issuer cannot be used to check a token: Expected 200 OK/);
  });
});

describe('introspection answers of other IdPs', () => {
  test('an active answer marked typ Refresh (Keycloak) is not an access token', async () => {
    const idp = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: true, typ: 'Refresh', sub: 'u1', aud: 'api', exp: now() + 600, scope: 'mcp:read' })),
    );
    const r = await registry({ type: 'oauth', oauth: { introspection_url: `${idp.url}/introspect`, audience: 'api', client_id: 'kg', client_secret: 's' } });
    const res = await me(r, 'opaque-refresh-token');
    assert.equal(res.status, 401);
    assert.equal(res.body.error_description, 'a refresh token is not an access token');
  });

  test('an active answer without exp is reused for cache_ttl only', async () => {
    let calls = 0;
    const idp = await serve((_req, res) => {
      calls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: true, sub: 'u2', aud: 'api' }));
    });
    const r = await registry({ type: 'oauth', oauth: { introspection: { endpoint: `${idp.url}/introspect`, client_id: 'kg', client_secret: 's', cache_ttl: '1s' }, audience: 'api' } });
    assert.equal((await me(r, 'opaque-a')).status, 200);
    assert.equal((await me(r, 'opaque-a')).status, 200);
    assert.equal(calls, 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await me(r, 'opaque-a')).status, 200);
    assert.equal(calls, 2);
  });

  test('an active answer whose exp has passed is refused', async () => {
    const idp = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: true, sub: 'u3', aud: 'api', exp: now() - 120 })));
    const r = await registry({ type: 'oauth', oauth: { introspection_url: `${idp.url}/introspect`, audience: 'api', client_id: 'kg', client_secret: 's' } });
    const res = await me(r, 'opaque-expired');
    assert.equal(res.status, 401);
    assert.equal(res.body.error_description, 'the access token has expired');
  });

  test('the introspection request authenticates the registry (RFC 7662 §2.1) and hints access_token', async () => {
    let seen: { authorization?: string; body: string } | undefined;
    const idp = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { authorization: req.headers.authorization, body };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: false }));
      });
    });
    const r = await registry({ type: 'oauth', oauth: { introspection_url: `${idp.url}/introspect`, audience: 'api', client_id: 'kg', client_secret: 'the-secret' } });
    assert.equal((await me(r, 'opaque-b')).status, 401);
    // RFC 6749 §2.3.1: Basic credentials of form-urlencoded id and secret.
    const [id, secret] = Buffer.from(seen!.authorization!.replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent);
    assert.deepEqual([id, secret], ['kg', 'the-secret']);
    const params = new URLSearchParams(seen!.body);
    assert.equal(params.get('token'), 'opaque-b');
    assert.equal(params.get('token_type_hint'), 'access_token');
  });
});
