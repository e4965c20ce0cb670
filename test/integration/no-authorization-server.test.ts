import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startFixture, type Fixture } from '../helpers/fixture.ts';

// oauth_server.enabled: false (issue 9, item 13): a registry that is no
// authorization server says so. It serves no authorization-server metadata
// and no JWKS, and its protected-resource documents (RFC 9728) do not send
// MCP clients to sign in at endpoints it does not mount: they name the
// issuer whose tokens it accepts (auth.type oauth), or none (static bearer).

const fixtures: Fixture[] = [];
after(() => Promise.all(fixtures.map((f) => f.close())));

async function registry(auth: Record<string, unknown>): Promise<string> {
  const f = await startFixture((config) => {
    config.oauth_server.enabled = false;
    config.auth = auth;
  });
  fixtures.push(f);
  return f.registry.url;
}

describe('a registry with oauth_server.enabled: false', () => {
  test('static bearer tokens: no authorization-server metadata, no JWKS, no OAuth endpoints; the resource documents name no authorization server', async () => {
    const base = await registry({ type: 'bearer', bearer: { valid_tokens: ['static-token-0123456789'] } });
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server/mcp/team', '/mcp/team/.well-known/openid-configuration', '/oauth/jwks']) {
      assert.equal((await fetch(`${base}${path}`)).status, 404, path);
    }
    assert.equal((await fetch(`${base}/oauth/token`, { method: 'POST' })).status, 404);
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp/team']) {
      const doc = (await (await fetch(`${base}${path}`)).json()) as Record<string, unknown>;
      assert.equal(doc.authorization_servers, undefined, path);
      assert.match(String(doc.resource), new RegExp(`^${base}`));
    }
    // The static token still works where it should.
    const res = await fetch(`${base}/api/v1/gateways`, { headers: { authorization: 'Bearer static-token-0123456789' } });
    assert.equal(res.status, 200);
  });

  test('tokens of another issuer (auth.type oauth): the resource documents name that issuer', async () => {
    const base = await registry({ type: 'oauth', oauth: { issuer: 'https://idp.example.com', jwks_url: 'https://idp.example.com/jwks', audience: 'https://keygate.example.com' } });
    const doc = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp/team`)).json()) as { authorization_servers: string[] };
    assert.deepEqual(doc.authorization_servers, ['https://idp.example.com']);
    assert.equal((await fetch(`${base}/.well-known/oauth-authorization-server`)).status, 404);
  });

  test('control: with the built-in authorization server the same documents are served and name the registry', async () => {
    const f = await startFixture();
    fixtures.push(f);
    const base = f.registry.url;
    assert.equal((await fetch(`${base}/.well-known/oauth-authorization-server`)).status, 200);
    assert.equal((await fetch(`${base}/oauth/jwks`)).status, 200);
    const doc = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp/team`)).json()) as { authorization_servers: string[] };
    assert.deepEqual(doc.authorization_servers, [base]);
  });
});
