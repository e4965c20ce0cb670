import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { auditEntries, connect, type MergedGateway, rpcError, startMergedGateway } from '../helpers/merged-gateway.ts';

// Tool filters (an assignment's allow / deny globs) on both endpoints, the
// same upstream assigned twice (shared for reads, per-user for writes), the
// JSON-RPC form of every failure (naming the step), and the audit record of
// each routed request.

const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');
const ACCEPT = 'application/json, text/event-stream';
const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'wire', version: '1' } };

let g: MergedGateway;
let base: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'both' },
      { id: 'locked', eras: 'modern', accept: (auth) => auth === 'Bearer the-right-key' },
    ],
    (config) => {
      config.upstreams.push({ id: 'dead', url: 'http://127.0.0.1:9/mcp', credential: { type: 'none' } });
      config.gateways.push(
        {
          id: 'hub',
          visibility: 'private',
          servers: [
            // The same upstream twice: reads through the service account, writes as each person.
            { upstream: 'crm', name: 'crm-read', identity: 'shared', shared_identity: 'crm-svc', tools: { allow: ['echo', 'whoami', 'add', 'count'] } },
            { upstream: 'crm', name: 'crm-write', identity: 'per_user', tools: { allow: ['write_*', 'whoami'] } },
            { upstream: 'dead', identity: 'shared' },
            { upstream: 'locked', identity: 'shared', shared_identity: 'locked-svc' },
          ],
        },
        { id: 'solo', visibility: 'private', servers: [{ upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc', tools: { deny: ['add', 'write_*'] } }] },
      );
    },
  );
  base = g.registry.url;
  await g.registry.registry.identities.put({ id: 'alice-crm', upstream: 'crm', owner: 'alice', availability: 'private', secret: { kind: 'bearer', token: 'alice-crm-token' } });
});
after(() => g.close());

const callsOf = (tool: string) => g.upstreams.crm!.requests.filter((r) => r.rpc === 'tools/call' && r.name === tool).length;

describe('the same upstream assigned twice, with different schemes and filters (/mcp/{gateway})', () => {
  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    test(`${era}: each assignment lists only the tools its filter allows`, async () => {
      const { client } = await connect(`${base}/mcp/hub`, era, { token: g.aliceToken });
      try {
        const names = (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith('crm-'));
        assert.deepEqual(names.sort(), ['crm-read__add', 'crm-read__count', 'crm-read__echo', 'crm-read__whoami', 'crm-write__whoami', 'crm-write__write_note']);
      } finally {
        await client.close();
      }
    });

    test(`${era}: reads go as the service account, writes as the caller; a filtered tool is refused before the upstream`, async () => {
      const { client } = await connect(`${base}/mcp/hub`, era, { token: g.aliceToken });
      try {
        assert.equal(text(await client.callTool({ name: 'crm-read__whoami', arguments: {} })), `Bearer ${g.upstreams.crm!.key}`);
        assert.equal(text(await client.callTool({ name: 'crm-write__whoami', arguments: {} })), 'Bearer alice-crm-token');
        assert.equal(text(await client.callTool({ name: 'crm-write__write_note', arguments: { text: 'hello' } })), 'wrote hello');
        const before = callsOf('write_note');
        await assert.rejects(client.callTool({ name: 'crm-read__write_note', arguments: { text: 'sneaky' } }), (err: { code: number; data: unknown; message: string }) => {
          assert.equal(err.code, -32003);
          assert.deepEqual(err.data, { step: 'assignment', reason: 'tool_not_allowed' });
          assert.match(err.message, /tool "write_note" is not available on \/mcp\/hub\/crm-read/);
          return true;
        });
        assert.equal(callsOf('write_note'), before, 'the refused call never reached the upstream');
      } finally {
        await client.close();
      }
    });
  }
});

describe('tool filters on the raw path (/mcp/{gateway}/{server})', () => {
  for (const era of ['2026-07-28', '2025-11-25'] as const) {
    test(`${era}: tools/list is filtered (the ${era === '2026-07-28' ? 'JSON' : 'SSE'} answer rewritten), a filtered tool is refused, an allowed one passes`, async () => {
      const { client } = await connect(`${base}/mcp/hub/crm-read`, era, { token: g.aliceToken });
      try {
        assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['add', 'count', 'echo', 'whoami']);
        const before = callsOf('write_note');
        await assert.rejects(client.callTool({ name: 'write_note', arguments: { text: 'x' } }), (err: { code: number; data: unknown }) => {
          assert.equal(err.code, -32003);
          assert.deepEqual(err.data, { step: 'assignment', reason: 'tool_not_allowed' });
          return true;
        });
        assert.equal(callsOf('write_note'), before);
        const progress: number[] = [];
        assert.equal(text(await client.callTool({ name: 'count', arguments: { n: 2 } }, { onprogress: (p) => progress.push(p.progress) })), 'counted to 2');
        assert.deepEqual(progress, [1, 2], 'an allowed call still streams');
      } finally {
        await client.close();
      }
    });
  }

  test('deny globs apply too (a gateway of one server is that server, names unchanged)', async () => {
    const { client } = await connect(`${base}/mcp/solo`, '2026-07-28', { token: g.aliceToken });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo') && !names.includes('add') && !names.includes('write_note'), names.join(' '));
      await assert.rejects(client.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), /not available/);
    } finally {
      await client.close();
    }
  });

  test('a 2025 request is judged by its body, whatever Mcp-Name header it carries', async () => {
    const headers = { authorization: `Bearer ${g.aliceToken}`, accept: ACCEPT, 'content-type': 'application/json' };
    const init = await fetch(`${base}/mcp/hub/crm-read`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    await init.text();
    const session = init.headers.get('mcp-session-id')!;
    const before = callsOf('write_note');
    const res = await fetch(`${base}/mcp/hub/crm-read`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'w1', method: 'tools/call', params: { name: 'write_note', arguments: { text: 'x' } } }),
    });
    assert.equal(res.status, 200, 'a JSON-RPC error, not an HTTP failure the client would retry');
    const body = (await res.json()) as { id: unknown; error: { code: number; data: unknown } };
    assert.equal(body.id, 'w1');
    assert.equal(body.error.code, -32003);
    assert.equal(callsOf('write_note'), before);
  });

  test('a 2026-07-28 request is judged by its Mcp-Name header', async () => {
    const res = await fetch(`${base}/mcp/hub/crm-read`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.aliceToken}`, accept: ACCEPT, 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'write_note' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'write_note', arguments: { text: 'x' }, _meta: envelope } }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { error: { data: unknown } }).error.data, { step: 'assignment', reason: 'tool_not_allowed' });
  });
});

describe('failures on /mcp/{gateway}, in the JSON-RPC form naming the step', () => {
  test('an unreachable upstream: its tools are left out of the list, a call to it names the upstream step', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.aliceToken });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('crm-read__echo'), 'the others are still listed');
      assert.ok(!names.some((n) => n.startsWith('dead__')));
      // As on the raw endpoint: 502 (the 2025 client reports the HTTP error, holding the JSON-RPC error).
      await assert.rejects(client.callTool({ name: 'dead__echo', arguments: {} }), (thrown: unknown) => {
        const err = rpcError(thrown);
        assert.equal(err.status, 502);
        assert.equal(err.code, -32010);
        assert.deepEqual(err.data, { step: 'upstream', reason: 'upstream_unreachable' });
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test('an upstream that refuses the credential: the upstream step, and an admin must look at the identity', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2026-07-28', { token: g.aliceToken });
    try {
      await assert.rejects(client.callTool({ name: 'locked__echo', arguments: { message: 'x' } }), (thrown: unknown) => {
        const err = rpcError(thrown);
        assert.equal(err.code, -32011);
        assert.deepEqual(err.data, { step: 'upstream', reason: 'upstream_rejected_credential' });
        assert.match(err.message, /\/mcp\/hub\/locked/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test('a disabled upstream and a disabled identity are refused at their steps, on the next call', async () => {
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.aliceToken });
    const { catalog } = g.registry.registry;
    try {
      await g.registry.store.update('identities', 'crm-svc', (current) => ({ ...(current as object), disabled: true }));
      try {
        // As on the raw endpoint, and as the break-glass table says: 403 (the 2025 client reports the HTTP error, holding the JSON-RPC error).
        await assert.rejects(client.callTool({ name: 'crm-read__whoami', arguments: {} }), (thrown: unknown) => {
          const err = rpcError(thrown);
          assert.equal(err.status, 403);
          assert.deepEqual(err.data, { step: 'vault', reason: 'identity_disabled' });
          return true;
        });
      } finally {
        await g.registry.store.update('identities', 'crm-svc', (current) => ({ ...(current as object), disabled: false }));
      }
      assert.equal(text(await client.callTool({ name: 'crm-read__whoami', arguments: {} })), `Bearer ${g.upstreams.crm!.key}`, 're-enabled: works again');
      await g.registry.store.upsert('switches', 'upstream:crm', { disabled: true, at: Date.now() });
      await catalog.reload();
      await assert.rejects(client.callTool({ name: 'crm-read__echo', arguments: { message: 'x' } }), (thrown: unknown) => {
        const err = rpcError(thrown);
        assert.equal(err.status, 403);
        assert.equal(err.code, -32003);
        assert.deepEqual(err.data, { step: 'assignment', reason: 'upstream_disabled' });
        return true;
      });
    } finally {
      await g.registry.store.destroy('switches', 'upstream:crm');
      await catalog.reload();
      await client.close();
    }
    const { client: again } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.aliceToken });
    assert.equal(text(await again.callTool({ name: 'crm-read__echo', arguments: { message: 'back' } })), 'back', 'switched back on: works again');
    await again.close();
  });
});

describe('audit of /mcp/{gateway}', () => {
  test('each routed request is recorded: method, tool, assignment, upstream, identity, outcome, latency; never a secret or an argument', async () => {
    const before = (await auditEntries(g.registry)).length;
    const { client } = await connect(`${base}/mcp/hub`, '2026-07-28', { token: g.aliceToken });
    try {
      await client.callTool({ name: 'crm-write__write_note', arguments: { text: 'argument-that-must-not-be-logged' } });
      await client.callTool({ name: 'crm-read__echo', arguments: { message: 'another-secret-argument' } });
      await assert.rejects(client.callTool({ name: 'crm-read__write_note', arguments: { text: 'x' } }));
      await client.listTools();
    } finally {
      await client.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    const entries = (await auditEntries(g.registry)).slice(before).filter((e) => e.gateway === 'hub');
    const pick = (e: (typeof entries)[number]) => ({ method: e.method, name: e.name, server: e.server, upstream: e.upstream, identity: e.identity, outcome: e.outcome, subject: e.subject });
    const calls = entries.filter((e) => e.method === 'tools/call').map(pick);
    assert.deepEqual(calls, [
      { method: 'tools/call', name: 'write_note', server: 'crm-write', upstream: 'crm', identity: 'alice-crm', outcome: 'ok', subject: 'alice' },
      { method: 'tools/call', name: 'echo', server: 'crm-read', upstream: 'crm', identity: 'crm-svc', outcome: 'ok', subject: 'alice' },
      { method: 'tools/call', name: 'write_note', server: 'crm-read', upstream: 'crm', identity: undefined, outcome: 'tool_not_allowed', subject: 'alice' },
    ]);
    assert.ok(entries.some((e) => e.method === 'tools/list' && e.server === undefined && e.outcome === 'ok'));
    for (const e of entries) assert.ok(e.latency_ms >= 0);
    const all = JSON.stringify(entries);
    for (const secret of [g.aliceToken, g.upstreams.crm!.key, 'alice-crm-token', 'argument-that-must-not-be-logged', 'another-secret-argument']) assert.ok(!all.includes(secret), `no ${secret.slice(0, 12)}… in the audit`);
  });

  test('a 2025 session\'s handshake is recorded by its JSON-RPC method, not as a bare POST', async () => {
    const before = (await auditEntries(g.registry)).length;
    const { client } = await connect(`${base}/mcp/hub`, '2025-11-25', { token: g.aliceToken });
    await client.close();
    await new Promise((r) => setTimeout(r, 50));
    const methods = (await auditEntries(g.registry)).slice(before).filter((e) => e.gateway === 'hub' && e.http_method === 'POST').map((e) => e.method);
    assert.ok(methods.includes('initialize'), methods.join(', '));
    assert.ok(methods.includes('notifications/initialized'), methods.join(', '));
    assert.ok(methods.every((m) => typeof m === 'string'), methods.join(', '));
  });
});
