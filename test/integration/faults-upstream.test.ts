import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { CODES } from '../../server/catalog/failure.ts';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.ts';
import { auditEntries } from '../helpers/merged-gateway.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

// Issue 12, faults of an upstream: down (connection refused), answering HTTP
// 500, hanging past its timeout, or cutting an SSE stream mid-answer. Each is
// answered to the caller as a JSON-RPC error naming the upstream step within
// the timeout, on the raw and the merged endpoint; the other upstream of the
// gateway keeps working through it; and the upstream's recovery is picked up
// without a restart of the registry.

const KEY = `demo-${randomBytes(12).toString('hex')}`;
const TIMEOUT_S = 1;
let demo: DemoUpstream;
let fault: FaultProxy;
let registry: TestRegistry;
let token: string;

before(async () => {
  demo = await startDemoUpstream({ apiKey: KEY });
  fault = await startFaultProxy(demo.url);
  registry = await startRegistry(
    {
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [
        { id: 'flaky', url: fault.url, credential: { type: 'bearer' }, timeout: TIMEOUT_S },
        { id: 'steady', url: demo.url, credential: { type: 'bearer' } },
      ],
      identities: [
        { id: 'flaky-svc', upstream: 'flaky', token_env: 'KEY' },
        { id: 'steady-svc', upstream: 'steady', token_env: 'KEY' },
      ],
      gateways: [
        {
          id: 'team',
          visibility: 'private',
          servers: [
            { upstream: 'flaky', identity: 'shared', shared_identity: 'flaky-svc' },
            { upstream: 'steady', identity: 'shared', shared_identity: 'steady-svc' },
          ],
        },
      ],
    },
    { ALICE_PASSWORD: ALICE.password, KEY },
  );
  token = (await signIn(registry.url, ALICE, { resource: `${registry.url}/mcp/team` })).tokens.access_token;
});
after(async () => {
  await registry?.close();
  await fault?.close();
  await demo?.close();
});

const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
type Endpoint = 'raw' | 'merged';

/** A 2026-07-28 tools/call of `tool` on `server`, through the raw or the merged endpoint: the status and every JSON-RPC message of the answer. */
async function call(endpoint: Endpoint, server: 'flaky' | 'steady', tool: string, args: Record<string, unknown>, progress = false) {
  const name = endpoint === 'raw' ? tool : `${server}__${tool}`;
  const url = endpoint === 'raw' ? `${registry.url}/mcp/team/${server}` : `${registry.url}/mcp/team`;
  const id = Math.floor(Math.random() * 1e9);
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: { ...meta, ...(progress && { progressToken: 'p1' }) } } }),
  });
  let text = '';
  let cut = false;
  try {
    text = await res.text();
  } catch {
    cut = true; // the answer was cut off under the client
  }
  const messages = (res.headers.get('content-type') ?? '').startsWith('text/event-stream')
    ? text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)) as Record<string, any>)
    : text ? [JSON.parse(text) as Record<string, any>] : [];
  const answer = messages.find((m) => m.id === id);
  return { status: res.status, messages, answer, cut, id };
}

/** The audit names the failure of the call (its outcome is the reason), not just an HTTP status. */
async function audited(endpoint: Endpoint, reason: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const last = (await auditEntries(registry)).filter((e) => e.server === 'flaky').at(-1);
    if (last?.outcome === reason) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const last = (await auditEntries(registry)).filter((e) => e.server === 'flaky').at(-1);
  assert.fail(`the audit of the ${endpoint} call says ${last?.outcome}, not ${reason}`);
}

async function steadyStillWorks(endpoint: Endpoint): Promise<void> {
  const r = await call(endpoint, 'steady', 'echo', { message: 'still here' });
  assert.equal(r.status, 200);
  assert.equal(r.answer?.result?.content?.[0]?.text, 'still here');
}

async function recovers(endpoint: Endpoint): Promise<void> {
  await fault.set('pass');
  const r = await call(endpoint, 'flaky', 'echo', { message: 'back' });
  assert.equal(r.status, 200, JSON.stringify(r.messages));
  assert.equal(r.answer?.result?.content?.[0]?.text, 'back');
}

const FAULTS: { fault: Fault; status: number; reason: string }[] = [
  { fault: 'down', status: 502, reason: 'upstream_unreachable' },
  { fault: 'http-500', status: 502, reason: 'upstream_error' },
  { fault: 'hang', status: 504, reason: 'upstream_timeout' },
];

for (const endpoint of ['raw', 'merged'] as const) {
  describe(`an upstream that fails, on the ${endpoint} endpoint`, () => {
    for (const { fault: f, status, reason } of FAULTS) {
      test(`${f}: a JSON-RPC error naming the upstream step, within the timeout; the other upstream keeps working; recovery is picked up`, { timeout: 30_000 }, async () => {
        // Healthy first, so the merged endpoint holds a pooled connection that the fault then breaks.
        await recovers(endpoint);
        await fault.set(f);
        const r = await call(endpoint, 'flaky', 'echo', { message: 'x' });
        assert.equal(r.status, status, JSON.stringify(r.messages));
        assert.equal(r.answer?.error?.code, CODES.upstream);
        assert.equal(r.answer?.error?.data?.step, 'upstream');
        assert.equal(r.answer?.error?.data?.reason, reason);
        assert.match(r.answer?.error?.message, /flaky/);
        await audited(endpoint, reason);
        await steadyStillWorks(endpoint);
        await recovers(endpoint);
      });
    }

    test('a server error that is the upstream\'s own JSON-RPC answer is passed on as it came (not replaced)', { timeout: 30_000 }, async () => {
      await recovers(endpoint);
      await fault.set('json-500');
      const r = await call(endpoint, 'flaky', 'echo', { message: 'x' });
      assert.equal(r.status, 500);
      assert.equal(r.answer?.error?.code, -32603);
      assert.equal(r.answer?.error?.message, 'the upstream tripped over itself');
      await recovers(endpoint);
    });

    test('an SSE stream cut mid-answer: the progress that came is delivered, then a JSON-RPC error for the call naming the upstream step', { timeout: 30_000 }, async () => {
      await recovers(endpoint);
      await fault.set('drop-sse');
      const r = await call(endpoint, 'flaky', 'countdown', { n: 5, delay_ms: 200 }, true);
      assert.equal(r.cut, false, 'the answer ends cleanly: the client is not left with a broken stream');
      assert.ok(r.messages.some((m) => m.method === 'notifications/progress'), JSON.stringify(r.messages));
      assert.equal(r.answer?.error?.code, CODES.upstream, JSON.stringify(r.messages));
      assert.equal(r.answer?.error?.data?.step, 'upstream');
      assert.equal(r.answer?.error?.data?.reason, 'upstream_stream_dropped');
      await audited(endpoint, 'upstream_stream_dropped');
      await steadyStillWorks(endpoint);
      await recovers(endpoint);
    });
  });
}
