import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, startControlFixture } from '../helpers/control.ts';
import type { Fixture } from '../helpers/fixture.ts';
import { type ClientEra, connect, ERAS, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';
import { signInAdmin } from '../helpers/oauth.ts';
import { startRegistry } from '../helpers/registry.ts';

// gateways[].servers[].prefix: what /mcp/{gateway} puts before a server's
// tool and prompt names (default: the server's name; "" keeps them as they
// are, as an MCP client or a test suite that calls fixed names expects). One
// prefix per server of a gateway; a name of the unprefixed server that reads
// as another server's is that server's.

describe('prefix: a server of a merged gateway that keeps its names', () => {
  let g: MergedGateway;
  let hub: string;

  before(async () => {
    g = await startMergedGateway(
      [
        { id: 'plain', eras: 'both' },
        { id: 'other', eras: 'both' },
      ],
      (config) => {
        config.gateways.push({
          id: 'hub',
          servers: [
            { upstream: 'plain', identity: 'shared', shared_identity: 'plain-svc', prefix: '' },
            { upstream: 'other', identity: 'shared', shared_identity: 'other-svc', prefix: 'o' },
          ],
        });
      },
    );
    // A tool of the unprefixed server whose name reads as the other server's.
    g.upstreams.plain!.addTool('o__echo');
    hub = `${g.registry.url}/mcp/hub`;
  });
  after(() => g?.close());

  for (const era of ERAS as ClientEra[]) {
    test(`${era}: tools and prompts of the prefix "" server under their own names, the other's as o__<name>; each call reaches its server`, async () => {
      const { client } = await connect(hub, era, { token: g.aliceToken });
      try {
        const tools = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(tools.includes('echo') && tools.includes('add'), `plain's own names: ${tools.join(', ')}`);
        assert.ok(tools.includes('o__echo') && tools.includes('o__add'), `other's prefixed names: ${tools.join(', ')}`);
        assert.ok(!tools.some((t) => t.startsWith('plain__') || t.startsWith('other__')), 'no name carries the server name once a prefix is set');
        const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
        assert.ok(prompts.includes('greet') && prompts.includes('o__greet'), prompts.join(', '));

        const before = { plain: g.upstreams.plain!.requests.length, other: g.upstreams.other!.requests.length };
        const plain = await client.callTool({ name: 'echo', arguments: { message: `plain via ${era}` } });
        assert.deepEqual(plain.content, [{ type: 'text', text: `plain via ${era}` }]);
        const other = await client.callTool({ name: 'o__echo', arguments: { message: `other via ${era}` } });
        assert.deepEqual(other.content, [{ type: 'text', text: `other via ${era}` }]);
        const calls = (up: 'plain' | 'other') => g.upstreams[up]!.requests.slice(before[up]).filter((r) => r.rpc === 'tools/call').map((r) => r.name);
        assert.deepEqual(calls('plain'), ['echo'], 'plain got its own name');
        assert.deepEqual(calls('other'), ['echo'], 'other got its own name, without the prefix');

        const greeting = await client.getPrompt({ name: 'greet', arguments: { who: 'Ada' } });
        assert.match(JSON.stringify(greeting.messages), /Say hello to Ada from plain/);
      } finally {
        await client.close();
      }
    });
  }

  test('a name of the unprefixed server that reads as another server\'s (o__echo) is that server\'s: listed once, called there, never at the unprefixed one', async () => {
    const { client } = await connect(hub, '2025-11-25', { token: g.aliceToken });
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      assert.equal(tools.filter((t) => t === 'o__echo').length, 1, tools.join(', '));
      const answer = await client.callTool({ name: 'o__echo', arguments: { message: 'whose?' } });
      assert.deepEqual(answer.content, [{ type: 'text', text: 'whose?' }], "other's echo answered");
      assert.ok(!g.upstreams.plain!.requests.some((r) => r.rpc === 'tools/call' && r.name === 'o__echo'), 'plain never got a call to its o__echo');
      assert.ok(g.registry.log.lines.some((l) => /"o__echo" of server "plain" is left out: the name belongs to another server of the gateway/.test(l)), 'the registry says why');
    } finally {
      await client.close();
    }
  });
});

describe('prefix: refused where two servers of a gateway would offer names under one prefix', () => {
  const servers = (a: Record<string, unknown>, b: Record<string, unknown>) => [
    { upstream: 'demo', name: 'one', identity: 'shared', shared_identity: 'svc', ...a },
    { upstream: 'demo', name: 'two', identity: 'shared', shared_identity: 'svc', ...b },
  ];
  const cases: [string, ReturnType<typeof servers>, RegExp][] = [
    ['two servers with prefix ""', servers({ prefix: '' }, { prefix: '' }), /servers.1.prefix: servers "one" and "two" of gateway "g" both keep their names unprefixed \(prefix: ""\); only one server of a gateway may/],
    ['two servers with one prefix', servers({ prefix: 'x' }, { prefix: 'x' }), /servers.1.prefix: servers "one" and "two" of gateway "g" both offer their names under the prefix "x"/],
    ["a prefix that is another server's name", servers({}, { prefix: 'one' }), /servers.1.prefix: servers "one" and "two" of gateway "g" both offer their names under the prefix "one"/],
    ['a prefix that is not an id', servers({ prefix: 'a b' }, {}), /servers.0.prefix: expected a prefix/],
  ];

  let f: Fixture;
  let admin: ReturnType<typeof apiClient>;
  before(async () => {
    f = await startControlFixture();
    admin = apiClient(f.registry.url, (await signInAdmin(f.registry.url, CAROL)).tokens.access_token);
  });
  after(() => f?.close());

  for (const [what, body, message] of cases) {
    test(`admin API: ${what} is 400, naming the field; nothing is created`, async () => {
      const res = await admin.post('/admin/gateways', { id: 'g', servers: body });
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, message);
      assert.equal((await admin.get('/admin/gateways/g')).status, 404);
    });
  }

  test('configuration file: two servers with prefix "" stop the registry at start, naming the key', async () => {
    const config = {
      upstreams: [{ id: 'demo', url: 'http://127.0.0.1:9/mcp', credential: { type: 'none' } }],
      gateways: [{ id: 'g', servers: servers({ prefix: '' }, { prefix: '' }).map(({ shared_identity: _s, ...s }) => s) }],
    };
    await assert.rejects(startRegistry(config), /gateways\[0\]\.servers\[1\]\.prefix: servers "one" and "two" of gateway "g" both keep their names unprefixed/);
  });

  test('a gateway whose servers have distinct prefixes is accepted, and the prefix is shown back', async () => {
    const created = await admin.post('/admin/gateways', { id: 'ok', servers: servers({ prefix: '' }, { prefix: 'b' }) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(
      created.body.servers.map((s: { name: string; prefix?: string }) => [s.name, s.prefix]),
      [
        ['one', ''],
        ['two', 'b'],
      ],
    );
  });
});
