import assert from 'node:assert/strict';
import { callEcho } from '../helpers/control.ts';
import { after, before, describe, test } from 'node:test';
import { auditEntries, connect, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// Tool policies of an assignment (allow / deny by who is calling) on both
// endpoints, in both eras: a denied call answers with the rule's reason in
// the JSON-RPC error form, is audited as policy_denied, and never reaches the
// upstream (which records every request it gets); tools/list hides what a
// caller is denied; an allowed call passes. Alice is in group "platform" with
// role "operator" and an example.com email; Bob has none of these.

const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');
const ACCEPT = 'application/json, text/event-stream';
const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'wire', version: '1' } };
const ERAS = ['2026-07-28', '2025-11-25'] as const;

const WRITE_REASON = 'Only the platform team may write';
const ADD_REASON = 'Operators only';
const ECHO_REASON = 'Bob may not echo on the fast server';
const LOBBY_REASON = 'Sign in with a company account';

const POLICIES = [
  { action: 'allow', tools: ['write_*'], when: { groups: ['platform'], email_domains: ['example.com'] } },
  { action: 'deny', tools: ['write_*'], reason: WRITE_REASON },
  { action: 'deny', tools: ['add'], unless: { roles: ['operator'] }, reason: ADD_REASON },
];

let g: MergedGateway;
let base: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'both' },
      { id: 'fast', eras: 'modern' },
    ],
    (config) => {
      const alice = config.oauth_server.builtin.users[0];
      alice.groups = ['platform'];
      alice.roles = ['operator'];
      // Bob carries a role named like the access role below: names alone grant nothing.
      config.oauth_server.builtin.users[1].roles = ['admin'];
      config.gateways.push(
        {
          id: 'guarded',
          visibility: 'private',
          servers: [
            { upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc', policies: POLICIES },
            { upstream: 'fast', identity: 'shared', shared_identity: 'fast-svc', policies: [{ action: 'deny', tools: ['echo'], when: { users: ['bob'] }, reason: ECHO_REASON }] },
          ],
        },
        { id: 'solo', visibility: 'private', servers: [{ upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc', policies: POLICIES }] },
        // Members by role, matched as the policies match roles (one matcher for members, policies and access roles).
        { id: 'operators', visibility: 'private', members: { roles: ['operator'] }, servers: [{ upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc' }] },
        { id: 'lobby', visibility: 'public', servers: [{ upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc', policies: [{ action: 'deny', unless: { email_domains: ['example.com'] }, reason: LOBBY_REASON }] }] },
      );
    },
  );
  base = g.registry.url;
});
after(() => g.close());

const reached = (upstream: 'crm' | 'fast', tool: string) => g.upstreams[upstream]!.requests.filter((r) => r.rpc === 'tools/call' && r.name === tool).length;

function deniedWith(reason: string) {
  return (err: { code: number; data: unknown; message: string }) => {
    assert.equal(err.code, -32003);
    assert.deepEqual(err.data, { step: 'assignment', reason: 'policy_denied' });
    assert.match(err.message, new RegExp(reason));
    return true;
  };
}

describe('policies on /mcp/{gateway} (merged)', () => {
  for (const era of ERAS) {
    test(`${era}: tools/list hides the tools a policy denies the caller, and only those`, async () => {
      const bob = await connect(`${base}/mcp/guarded`, era, { token: g.bobToken });
      const alice = await connect(`${base}/mcp/guarded`, era, { token: g.aliceToken });
      try {
        const bobs = (await bob.client.listTools()).tools.map((t) => t.name);
        const alices = (await alice.client.listTools()).tools.map((t) => t.name);
        for (const hidden of ['crm__write_note', 'crm__add', 'fast__echo']) assert.ok(!bobs.includes(hidden), `${hidden} hidden from bob: ${bobs.join(' ')}`);
        for (const shown of ['crm__echo', 'crm__whoami', 'fast__add']) assert.ok(bobs.includes(shown), `${shown} listed for bob`);
        for (const shown of ['crm__write_note', 'crm__add', 'crm__echo', 'fast__echo']) assert.ok(alices.includes(shown), `${shown} listed for alice`);
      } finally {
        await bob.client.close();
        await alice.client.close();
      }
    });

    test(`${era}: a denied call answers with the rule's reason and never reaches the upstream; an allowed one passes`, async () => {
      const bob = await connect(`${base}/mcp/guarded`, era, { token: g.bobToken });
      const alice = await connect(`${base}/mcp/guarded`, era, { token: g.aliceToken });
      try {
        const writes = reached('crm', 'write_note');
        const adds = reached('crm', 'add');
        await assert.rejects(bob.client.callTool({ name: 'crm__write_note', arguments: { text: 'sneaky' } }), deniedWith(WRITE_REASON));
        await assert.rejects(bob.client.callTool({ name: 'crm__add', arguments: { a: 1, b: 2 } }), deniedWith(ADD_REASON));
        assert.equal(reached('crm', 'write_note'), writes, 'the denied write never reached the upstream');
        assert.equal(reached('crm', 'add'), adds, 'the denied add never reached the upstream');
        assert.equal(text(await bob.client.callTool({ name: 'crm__echo', arguments: { message: 'bob may echo' } })), 'bob may echo', 'a tool no rule names is allowed');

        assert.equal(text(await alice.client.callTool({ name: 'crm__write_note', arguments: { text: 'hello' } })), 'wrote hello', 'the allow rule matches alice first');
        assert.equal(text(await alice.client.callTool({ name: 'crm__add', arguments: { a: 1, b: 2 } })), '3', 'unless spares the operator');
        assert.equal(reached('crm', 'write_note'), writes + 1);
      } finally {
        await bob.client.close();
        await alice.client.close();
      }
    });
  }

  test('2026-07-28 to a 2026-07-28 upstream: the fast path declines a denied call (refused, never forwarded) and serves an allowed one', async () => {
    const bob = await connect(`${base}/mcp/guarded`, '2026-07-28', { token: g.bobToken });
    const alice = await connect(`${base}/mcp/guarded`, '2026-07-28', { token: g.aliceToken });
    try {
      // Warm: the upstream's era is known once it was reached once.
      assert.equal(text(await alice.client.callTool({ name: 'fast__echo', arguments: { message: 'warm' } })), 'warm');
      const echoes = reached('fast', 'echo');
      await assert.rejects(bob.client.callTool({ name: 'fast__echo', arguments: { message: 'x' } }), deniedWith(ECHO_REASON));
      await assert.rejects(bob.client.callTool({ name: 'fast__echo', arguments: { message: 'again' } }), deniedWith(ECHO_REASON));
      assert.equal(reached('fast', 'echo'), echoes, 'neither denied call reached the upstream');
      assert.equal(text(await alice.client.callTool({ name: 'fast__echo', arguments: { message: 'alice' } })), 'alice');
      assert.equal(reached('fast', 'echo'), echoes + 1);
    } finally {
      await bob.client.close();
      await alice.client.close();
    }
  });

  test('a hand-written 2026-07-28 fast-path call (Mcp-Method / Mcp-Name) is refused with the reason, HTTP 200', async () => {
    const before = reached('fast', 'echo');
    const res = await fetch(`${base}/mcp/guarded`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.bobToken}`, accept: ACCEPT, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'fast__echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'fast__echo', arguments: { message: 'x' }, _meta: envelope } }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: unknown; error: { code: number; message: string; data: unknown } };
    assert.equal(body.id, 41);
    assert.equal(body.error.message, ECHO_REASON);
    assert.deepEqual(body.error.data, { step: 'assignment', reason: 'policy_denied' });
    assert.equal(reached('fast', 'echo'), before);
  });
});

describe('policies on /mcp/{gateway}/{server} (raw)', () => {
  for (const era of ERAS) {
    test(`${era}: tools/list is filtered per caller; a denied call is refused with the reason before the upstream; an allowed one passes`, async () => {
      const bob = await connect(`${base}/mcp/guarded/crm`, era, { token: g.bobToken });
      const alice = await connect(`${base}/mcp/guarded/crm`, era, { token: g.aliceToken });
      try {
        const bobs = (await bob.client.listTools()).tools.map((t) => t.name);
        assert.ok(!bobs.includes('write_note') && !bobs.includes('add') && bobs.includes('echo'), bobs.join(' '));
        const alices = (await alice.client.listTools()).tools.map((t) => t.name);
        assert.ok(alices.includes('write_note') && alices.includes('add'), alices.join(' '));

        const writes = reached('crm', 'write_note');
        await assert.rejects(bob.client.callTool({ name: 'write_note', arguments: { text: 'x' } }), deniedWith(WRITE_REASON));
        await assert.rejects(bob.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), deniedWith(ADD_REASON));
        assert.equal(reached('crm', 'write_note'), writes);
        assert.equal(text(await bob.client.callTool({ name: 'echo', arguments: { message: 'ok' } })), 'ok');
        assert.equal(text(await alice.client.callTool({ name: 'write_note', arguments: { text: 'raw' } })), 'wrote raw');
        assert.equal(reached('crm', 'write_note'), writes + 1);
      } finally {
        await bob.client.close();
        await alice.client.close();
      }
    });
  }

  test('a gateway of one server (forwarded as is) applies the policy too', async () => {
    const bob = await connect(`${base}/mcp/solo`, '2026-07-28', { token: g.bobToken });
    try {
      assert.ok(!(await bob.client.listTools()).tools.some((t) => t.name === 'write_note'));
      await assert.rejects(bob.client.callTool({ name: 'write_note', arguments: { text: 'x' } }), deniedWith(WRITE_REASON));
    } finally {
      await bob.client.close();
    }
  });

  test('a 2025 request is judged by its body, whatever Mcp-Name header it carries', async () => {
    const headers = { authorization: `Bearer ${g.bobToken}`, accept: ACCEPT, 'content-type': 'application/json' };
    const init = await fetch(`${base}/mcp/guarded/crm`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    await init.text();
    const before = reached('crm', 'write_note');
    const res = await fetch(`${base}/mcp/guarded/crm`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'w1', method: 'tools/call', params: { name: 'write_note', arguments: { text: 'x' } } }),
    });
    assert.equal(res.status, 200, 'a JSON-RPC error, not an HTTP failure the client would retry');
    const body = (await res.json()) as { id: unknown; error: { code: number; message: string; data: unknown } };
    assert.deepEqual(body, { jsonrpc: '2.0', id: 'w1', error: { code: -32003, message: WRITE_REASON, data: { step: 'assignment', reason: 'policy_denied' } } });
    assert.equal(reached('crm', 'write_note'), before);
  });

  test('a 2026-07-28 request is judged by its Mcp-Name header, and answered with its id', async () => {
    const before = reached('crm', 'write_note');
    const res = await fetch(`${base}/mcp/guarded/crm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.bobToken}`, accept: ACCEPT, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'write_note' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'write_note', arguments: { text: 'x' }, _meta: envelope } }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: unknown; error: { message: string; data: unknown } };
    assert.equal(body.id, 9);
    assert.equal(body.error.message, WRITE_REASON);
    assert.equal(reached('crm', 'write_note'), before);
  });
});

describe('gateway members by role', () => {
  test("members.roles: alice (role operator) reaches the gateway; bob (role admin) is not a member", async () => {
    const alice = await callEcho(`${base}/mcp/operators/crm`, g.aliceToken);
    assert.equal(alice.status, 200, alice.message);
    const bob = await callEcho(`${base}/mcp/operators/crm`, g.bobToken);
    assert.deepEqual([bob.status, bob.reason], [403, 'not_a_member']);
  });
});

describe('anonymous callers of a public gateway', () => {
  const echo = (token: string | undefined) =>
    fetch(`${base}/mcp/lobby`, {
      method: 'POST',
      headers: { ...(token && { authorization: `Bearer ${token}` }), accept: ACCEPT, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' }, _meta: envelope } }),
    }).then(async (r) => (await r.json()) as { result?: { content: { text: string }[] }; error?: { message: string; data: unknown } });

  test('match no attribute: "deny unless email_domains" denies them (and anyone else outside the domain)', async () => {
    const before = reached('crm', 'echo');
    const anonymous = await echo(undefined);
    assert.equal(anonymous.error?.message, LOBBY_REASON);
    assert.deepEqual(anonymous.error?.data, { step: 'assignment', reason: 'policy_denied' });
    assert.equal((await echo(g.bobToken)).error?.message, LOBBY_REASON, 'bob has no email');
    assert.equal(reached('crm', 'echo'), before);
    assert.equal((await echo(g.aliceToken)).result?.content[0]?.text, 'hi');
  });
});

describe('audit of denied calls', () => {
  test('each denied call is recorded as policy_denied with the tool, the server and the caller, on both endpoints', async () => {
    const before = (await auditEntries(g.registry)).length;
    const merged = await connect(`${base}/mcp/guarded`, '2025-11-25', { token: g.bobToken });
    const raw = await connect(`${base}/mcp/guarded/crm`, '2026-07-28', { token: g.bobToken });
    try {
      await assert.rejects(merged.client.callTool({ name: 'crm__write_note', arguments: { text: 'argument-never-logged' } }));
      await assert.rejects(raw.client.callTool({ name: 'write_note', arguments: { text: 'argument-never-logged' } }));
    } finally {
      await merged.client.close();
      await raw.client.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    const denied = (await auditEntries(g.registry))
      .slice(before)
      .filter((e) => e.outcome === 'policy_denied')
      .map((e) => ({ gateway: e.gateway, server: e.server, upstream: e.upstream, method: e.method, name: e.name, subject: e.subject, identity: e.identity }));
    assert.deepEqual(denied, [
      { gateway: 'guarded', server: 'crm', upstream: 'crm', method: 'tools/call', name: 'write_note', subject: 'bob', identity: undefined },
      { gateway: 'guarded', server: 'crm', upstream: 'crm', method: 'tools/call', name: 'write_note', subject: 'bob', identity: undefined },
    ]);
    const all = JSON.stringify(await auditEntries(g.registry));
    assert.ok(!all.includes('argument-never-logged'));
  });
});
