import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { signIn } from '../../extension/auth/sign-in.ts';
import { RegistryHttpError, RegistryResponseError } from '../../extension/errors.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { ALICE, BOB, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authHarness } from './extension-fakes.ts';

// GET /api/v1/gateways and /api/v1/me against the real registry.

describe('extension registry client', () => {
  let f: Fixture;
  let aliceToken: string;
  before(async () => {
    f = await startFixture();
    const h = authHarness(f.registry.url, ALICE);
    aliceToken = (await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log })).accessToken;
  });
  after(() => f.close());

  test('anonymous callers see only public gateways', async () => {
    const gateways = await new RegistryClient(f.registry.url).gateways();
    assert.deepEqual(
      gateways.map((g) => [g.id, g.visibility]),
      [['open', 'public']],
    );
  });

  test('a signed-in caller sees private gateways too, mapped to camelCase', async () => {
    const gateways = await new RegistryClient(f.registry.url).gateways(aliceToken);
    assert.deepEqual(gateways.map((g) => g.id).sort(), ['open', 'team']);
    const team = gateways.find((g) => g.id === 'team')!;
    assert.deepEqual(team, {
      id: 'team',
      name: 'team',
      description: undefined,
      visibility: 'private',
      mcpUrl: `${f.registry.url}/mcp/team`,
      servers: [{ name: 'demo', upstream: 'demo', upstreamName: 'demo', identity: 'shared', mcpUrl: `${f.registry.url}/mcp/team/demo` }],
    });
  });

  test('/me names the caller', async () => {
    const me = await new RegistryClient(f.registry.url).me(aliceToken);
    assert.ok(me.authenticated);
    assert.equal(me.subject, 'alice');
    assert.equal(me.email, 'alice@example.com');
    assert.deepEqual([...me.scopes].sort(), ['mcp:read', 'mcp:write', 'offline_access']);
    const h = authHarness(f.registry.url, BOB);
    const bob = await signIn({ flow: h.flow, registryClient: h.registryClient, callbacks: h.callbacks, ui: h.ui, log: h.log });
    assert.equal(bob.account.id, 'bob');
  });

  test('a token the registry does not accept is a RegistryHttpError 401 with the registry error code', async () => {
    await assert.rejects(new RegistryClient(f.registry.url).gateways('not-a-valid-token'), (err: unknown) => {
      assert.ok(err instanceof RegistryHttpError);
      assert.equal(err.status, 401);
      assert.equal(err.error, 'invalid_token');
      assert.equal(err.code, 'ERR_REGISTRY_HTTP');
      return true;
    });
  });

  describe('bodies that are not the documented shape', () => {
    // The real registry never sends these; a stand-in server does, to prove zod guards the edge.
    let url: string;
    let body = '';
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    before(async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const gateway = { id: 'g', name: 'G', visibility: 'public', mcp_url: 'https://r.example/mcp/g', servers: [] };
    const cases: [string, unknown, RegExp][] = [
      ['not JSON', 'oops', /unexpected body/],
      ['no gateways array', { items: [] }, /at gateways/],
      ['a gateway without mcp_url', { gateways: [{ ...gateway, mcp_url: undefined }] }, /gateways\.0\.mcp_url/],
      ['an mcp_url that is not http(s)', { gateways: [{ ...gateway, mcp_url: 'javascript:alert(1)' }] }, /gateways\.0\.mcp_url/],
      ['an unknown visibility', { gateways: [{ ...gateway, visibility: 'secret' }] }, /gateways\.0\.visibility/],
    ];
    for (const [name, payload, message] of cases) {
      test(`${name} is a RegistryResponseError`, async () => {
        body = typeof payload === 'string' ? payload : JSON.stringify(payload);
        await assert.rejects(new RegistryClient(url).gateways(), (err: unknown) => err instanceof RegistryResponseError && message.test(err.message));
      });
    }

    test('extra fields are ignored (lenient for documents from another server)', async () => {
      body = JSON.stringify({ gateways: [{ ...gateway, color: 'blue', servers: [{ name: 's', upstream: 'u', identity: 'per_user', mcp_url: 'https://r.example/mcp/g/s', extra: 1 }] }], next: null });
      const [g] = await new RegistryClient(url).gateways();
      assert.equal(g!.id, 'g');
      assert.equal(g!.servers[0]!.identity, 'per_user');
      assert.ok(!('color' in g!));
    });
  });
});
