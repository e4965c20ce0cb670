import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/client';
import { Selections } from '../../server/vault/selections.ts';
import { connect, eventually, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// Whose credential reaches the upstream, on /mcp/{gateway} and
// /mcp/{gateway}/{server}: shared assignments carry the service account's,
// per-user ones each caller's own (store-created identities, chosen by
// selection), never the inbound token. A per-user server the caller has not
// connected still lists its tools, and a call says how to connect: -32042
// URL elicitation for 2025-11-25 clients that declare it, input_required URL
// elicitation for 2026-07-28 clients that declare it, a readable tool error
// otherwise.

const URL_ELICITATION = { elicitation: { url: {} } };
const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

let g: MergedGateway;
let base: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'legacy' },
      { id: 'docs', eras: 'modern' },
      { id: 'wiki', eras: 'both' },
    ],
    (config) => {
      config.gateways.push(
        {
          id: 'hub',
          visibility: 'private',
          servers: [
            { upstream: 'crm', name: 'crm-shared', identity: 'shared', shared_identity: 'crm-svc' },
            { upstream: 'crm', name: 'crm-mine', identity: 'per_user' },
            { upstream: 'docs', identity: 'per_user' },
            { upstream: 'wiki', identity: 'per_user' },
          ],
        },
        { id: 'open', visibility: 'public', servers: [{ upstream: 'wiki', identity: 'per_user' }] },
      );
    },
  );
  base = g.registry.url;
  const { identities } = g.registry.registry;
  await identities.put({ id: 'alice-crm', upstream: 'crm', owner: 'alice', availability: 'private', label: 'Alice at CRM', secret: { kind: 'bearer', token: 'alice-crm-token' } });
  await identities.put({ id: 'alice-docs', upstream: 'docs', owner: 'alice', availability: 'private', secret: { kind: 'bearer', token: 'alice-docs-token' } });
});
after(() => g.close());

describe('per-user and shared identities reaching the upstream', () => {
  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    test(`${era}, /mcp/{gateway}: the shared server gets the service account, the per-user servers alice's own credential`, async () => {
      const { client } = await connect(`${base}/mcp/hub`, era, { token: g.aliceToken });
      try {
        assert.equal(text(await client.callTool({ name: 'crm-shared__whoami', arguments: {} })), `Bearer ${g.upstreams.crm!.key}`);
        assert.equal(text(await client.callTool({ name: 'crm-mine__whoami', arguments: {} })), 'Bearer alice-crm-token');
        assert.equal(text(await client.callTool({ name: 'docs__whoami', arguments: {} })), 'Bearer alice-docs-token');
        for (const up of Object.values(g.upstreams)) assert.ok(!JSON.stringify(up.requests).includes(g.aliceToken), 'never the inbound token');
      } finally {
        await client.close();
      }
    });

  }

  test('/mcp/{gateway}/{server}: the raw path injects the same credentials (each upstream in the era it speaks)', async () => {
    for (const [server, era, expected] of [
      ['crm-shared', '2025-11-25', `Bearer ${g.upstreams.crm!.key}`],
      ['crm-mine', '2025-06-18', 'Bearer alice-crm-token'],
      ['docs', '2026-07-28', 'Bearer alice-docs-token'],
    ] as const) {
      const { client } = await connect(`${base}/mcp/hub/${server}`, era, { token: g.aliceToken });
      try {
        assert.equal(text(await client.callTool({ name: 'whoami', arguments: {} })), expected, server);
      } finally {
        await client.close();
      }
    }
  });

  test('each user has their own pooled upstream session; a selection picks which identity serves them', async () => {
    const { identities } = g.registry.registry;
    await identities.put({ id: 'bob-crm', upstream: 'crm', owner: 'bob', availability: 'private', secret: { kind: 'bearer', token: 'bob-crm-token' } });
    await identities.put({ id: 'crm-team', upstream: 'crm', owner: 'organization', availability: 'global', label: 'CRM team account', secret: { kind: 'bearer', token: 'crm-team-token' } });
    const { client: bob } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.bobToken });
    try {
      assert.equal(text(await bob.callTool({ name: 'crm-mine__whoami', arguments: {} })), 'Bearer bob-crm-token');
      await new Selections(g.registry.store).set('bob', 'hub', 'crm-mine', 'crm-team');
      assert.equal(text(await bob.callTool({ name: 'crm-mine__whoami', arguments: {} })), 'Bearer crm-team-token', 'the selected global identity serves bob now');
      // The gateway's own sessions (initialize from "keygate"): one per identity, however many calls.
      const initializes = (auth: string) =>
        g.upstreams.crm!.requests.filter((r) => r.rpc === 'initialize' && r.authorization === auth && (r.body as { params: { clientInfo: { name: string } } }).params.clientInfo.name === 'keygate').length;
      assert.equal(initializes('Bearer bob-crm-token'), 1);
      assert.equal(initializes('Bearer crm-team-token'), 1);
      assert.equal(initializes('Bearer alice-crm-token'), 1);
      assert.equal(initializes(`Bearer ${g.upstreams.crm!.key}`), 1);
    } finally {
      await new Selections(g.registry.store).clear('bob', 'hub', 'crm-mine');
      await bob.close();
    }
  });

  test("a per-user upstream's news reaches its user only", async () => {
    const heard = { alice: 0, bob: 0 };
    const open = async (who: 'alice' | 'bob') =>
      (
        await connect(`${base}/mcp/hub`, '2025-11-25', {
          token: who === 'alice' ? g.aliceToken : g.bobToken,
          configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void heard[who]++),
        })
      ).client;
    const alice = await open('alice');
    const bob = await open('bob');
    try {
      await alice.listTools();
      await bob.listTools();
      await new Promise((r) => setTimeout(r, 200)); // the upstream streams open
      // Only what follows counts (bob's selection, changed by the test before, is told to his sessions too).
      heard.alice = heard.bob = 0;
      g.upstreams.crm!.addTool('alices_only', 'Bearer alice-crm-token');
      await eventually(() => heard.alice > 0, 'alice hears the change');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(heard.bob, 0, "bob's upstream sessions did not change");
      assert.ok((await alice.listTools()).tools.some((t) => t.name === 'crm-mine__alices_only'));
      assert.ok(!(await bob.listTools()).tools.some((t) => t.name === 'crm-mine__alices_only'));
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});

describe('a per-user server the caller has not connected (merged endpoint)', () => {
  let carol: Client | undefined;
  after(() => carol?.close());

  test('its tools are listed: as last seen at the upstream, else a placeholder that says how to connect', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.bobToken });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      // crm was listed through the shared assignment: its tools are known.
      assert.ok(names.includes('crm-mine__write_note'));
      // Nobody ever listed wiki: one placeholder.
      const wiki = (await client.listTools()).tools.filter((t) => t.name.startsWith('wiki__'));
      assert.deepEqual(wiki.map((t) => t.name), ['wiki__keygate_connect_account']);
      assert.match(wiki[0]!.description!, new RegExp(`${base}/connect/hub/wiki`));
    } finally {
      await client.close();
    }
  });

  test('2025-11-25 client declaring URL elicitation: -32042 URLElicitationRequiredError with the connect URL', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.bobToken, capabilities: URL_ELICITATION });
    try {
      await assert.rejects(client.callTool({ name: 'wiki__echo', arguments: { message: 'hi' } }), (err: { code: number; data: { elicitations: Record<string, string>[] } }) => {
        assert.equal(err.code, -32042);
        const [e] = err.data.elicitations;
        assert.equal(e!.mode, 'url');
        assert.equal(e!.url, `${base}/connect/hub/wiki`);
        assert.ok(e!.elicitationId && e!.message!.includes('connect your wiki account'));
        return true;
      });
    } finally {
      await client.close();
    }
  });

  for (const era of ['2026-07-28', '2025-11-25', '2025-06-18'] as const) {
    test(`${era} client without URL elicitation: a readable tool error naming the URL`, async () => {
      const { client } = await connect(`${base}/mcp/hub`, era, { token: g.bobToken });
      try {
        const result = await client.callTool({ name: 'wiki__echo', arguments: { message: 'hi' } });
        assert.equal(result.isError, true);
        assert.match(text(result), new RegExp(`Open ${base}/connect/hub/wiki in your browser`));
      } finally {
        await client.close();
      }
    });
  }

  test('2026-07-28 client declaring URL elicitation: an input_required URL elicitation, then (still not connected) the tool error', async () => {
    const asked: Record<string, unknown>[] = [];
    const { client } = await connect(`${base}/mcp/hub`, '2026-07-28', {
      token: g.bobToken,
      capabilities: URL_ELICITATION,
      configure: (c) =>
        c.setRequestHandler('elicitation/create', async (r) => {
          asked.push(r.params as Record<string, unknown>);
          return { action: 'accept' };
        }),
    });
    try {
      const result = await client.callTool({ name: 'wiki__echo', arguments: { message: 'hi' } });
      assert.equal(asked.length, 1);
      assert.equal(asked[0]!.mode, 'url');
      assert.equal(asked[0]!.url, `${base}/connect/hub/wiki`);
      assert.equal(result.isError, true);
    } finally {
      await client.close();
    }
  });

  test('a sign-in that expired (no refresh token) is answered the same way', async () => {
    await g.registry.registry.identities.put({ id: 'alice-wiki-old', upstream: 'wiki', owner: 'alice', availability: 'private', secret: { kind: 'oauth', access_token: 'stale', token_type: 'Bearer', expires_at: Math.floor(Date.now() / 1000) - 60 } });
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.aliceToken });
    try {
      const result = await client.callTool({ name: 'wiki__echo', arguments: { message: 'hi' } });
      assert.equal(result.isError, true);
      assert.match(text(result), /sign-in has expired: connect again/);
      assert.match(text(result), new RegExp(`${base}/connect/hub/wiki`));
    } finally {
      await g.registry.store.destroy('identities', 'alice-wiki-old');
      await client.close();
    }
  });

  test('once connected, the next call on the same session goes through with the new identity', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.bobToken });
    carol = client;
    assert.equal((await client.callTool({ name: 'wiki__whoami', arguments: {} })).isError, true);
    await g.registry.registry.identities.put({ id: 'bob-wiki', upstream: 'wiki', owner: 'bob', availability: 'private', secret: { kind: 'bearer', token: 'bob-wiki-token' } });
    assert.equal(text(await client.callTool({ name: 'wiki__whoami', arguments: {} })), 'Bearer bob-wiki-token');
    await g.registry.store.destroy('identities', 'bob-wiki');
  });
});

describe('a per-user server the caller has not connected (raw path /mcp/{gateway}/{server})', () => {
  test('tools/list answers the placeholder; a 2025-11-25 call is -32042 for a client declaring URL elicitation', async () => {
    const { client } = await connect(`${base}/mcp/hub/wiki`, '2025-11-25', { token: g.bobToken, capabilities: URL_ELICITATION });
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['keygate_connect_account']);
      await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'x' } }), (err: { code: number; data: { elicitations: { url: string }[] } }) => {
        assert.equal(err.code, -32042);
        assert.equal(err.data.elicitations[0]!.url, `${base}/connect/hub/wiki`);
        return true;
      });
    } finally {
      await client.close();
    }
    assert.ok(!g.upstreams.wiki!.requests.some((r) => r.authorization === `Bearer ${g.bobToken}`), 'nothing was forwarded');
  });

  for (const era of ['2026-07-28', '2025-06-18'] as const) {
    test(`${era} client without URL elicitation: the tool error with the URL`, async () => {
      const { client } = await connect(`${base}/mcp/hub/wiki`, era, { token: g.bobToken });
      try {
        const result = await client.callTool({ name: 'echo', arguments: { message: 'x' } });
        assert.equal(result.isError, true);
        assert.match(text(result), new RegExp(`${base}/connect/hub/wiki`));
      } finally {
        await client.close();
      }
    });
  }

  test('2026-07-28 client declaring URL elicitation: input_required with the URL, then the tool error', async () => {
    const asked: string[] = [];
    const { client } = await connect(`${base}/mcp/hub/wiki`, '2026-07-28', {
      token: g.bobToken,
      capabilities: URL_ELICITATION,
      configure: (c) =>
        c.setRequestHandler('elicitation/create', async (r) => {
          asked.push(String((r.params as { url?: unknown }).url));
          return { action: 'accept' };
        }),
    });
    try {
      const result = await client.callTool({ name: 'echo', arguments: { message: 'x' } });
      assert.deepEqual(asked, [`${base}/connect/hub/wiki`]);
      assert.equal(result.isError, true);
    } finally {
      await client.close();
    }
  });

  test('a listing through the raw path by a connected user is what the unconnected see', async () => {
    const { client: alice } = await connect(`${base}/mcp/hub/docs`, '2026-07-28', { token: g.aliceToken });
    await alice.listTools();
    await alice.close();
    const { client: bob } = await connect(`${base}/mcp/hub/docs`, '2026-07-28', { token: g.bobToken });
    try {
      const names = (await bob.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo') && names.includes('whoami') && !names.includes('keygate_connect_account'), names.join(' '));
      assert.equal((await bob.callTool({ name: 'echo', arguments: { message: 'x' } })).isError, true);
    } finally {
      await bob.close();
    }
  });

  // The stand-in's 2025 session going on once the account is connected: test/integration/stand-in-session.test.ts.

  test('an anonymous caller on a per-user server still gets 401 and the RFC 9728 challenge', async () => {
    const res = await fetch(`${base}/mcp/open/wiki`, {
      method: 'POST',
      headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp/open/wiki", scope="mcp:read mcp:write"`);
    assert.equal(((await res.json()) as { error: { data: { reason: string } } }).error.data.reason, 'sign_in_required');
  });
});
