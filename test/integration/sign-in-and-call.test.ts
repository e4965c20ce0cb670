import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { connectWithSignIn, type Era } from '../helpers/mcp-oauth.ts';

// A real MCP SDK client signs in to the registry (discovery, dynamic
// registration, authorize, login form, code + PKCE, refresh) and calls a demo
// tool through the gateway, in each protocol era.

for (const era of ['2026-07-28', '2025-11-25', '2025-06-18'] as const satisfies Era[]) {
  describe(`MCP client speaking ${era}`, () => {
    let f: Fixture;
    before(async () => {
      f = await startFixture();
    });
    after(() => f.close());

    test('signs in through the login form, lists and calls a tool through /mcp/{gateway}/{server}', async () => {
      const { client, provider } = await connectWithSignIn(`${f.registry.url}/mcp/team/demo`, era, ALICE);
      assert.equal(client.getNegotiatedProtocolVersion(), era);
      assert.equal(provider.registered.length, 1, 'the client registered itself (RFC 7591)');
      const authorize = provider.pendingAuthorization!;
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(authorize.searchParams.get('resource'), `${f.registry.url}/mcp/team/demo`);

      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'countdown', 'echo', 'whoami']);
      const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
      assert.deepEqual(result.structuredContent, { sum: 42 });

      // The upstream saw Keygate's shared credential on every request, and never the caller's token.
      const accessToken = provider.tokens()!.access_token;
      assert.ok(f.upstream.seen.length > 0);
      for (const seen of f.upstream.seen) {
        assert.equal(seen.authorization, `Bearer ${f.apiKey}`);
        assert.ok(!JSON.stringify(seen).includes(accessToken));
      }
      await client.close();
    });

    test('refreshes a rejected access token with its refresh token and goes on', async () => {
      const { client, provider } = await connectWithSignIn(`${f.registry.url}/mcp/team/demo`, era, ALICE);
      const first = provider.tokens()!;
      assert.ok(first.refresh_token, 'a refresh token was issued');
      provider.spoilAccessToken();
      const result = await client.callTool({ name: 'echo', arguments: { message: 'after refresh' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'after refresh' }]);
      const latest = provider.tokens()!;
      assert.notEqual(latest.access_token, first.access_token);
      assert.notEqual(latest.refresh_token, first.refresh_token, 'refresh tokens rotate');
      await client.close();
    });
  });
}
