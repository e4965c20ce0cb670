import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEraHub } from '../helpers/merged-gateway.ts';

// The registry's close() (SIGTERM, SIGINT): a call it holds for a client's
// answer (an upstream's 2025 server-to-client request, turned into an
// input_required round) is cancelled at the upstream, and every 2025 session
// the registry opened upstream is ended with DELETE, so upstreams are not
// left holding sessions and calls nobody will finish.

const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } }, 'io.modelcontextprotocol/clientInfo': { name: 'close', version: '1' } };

test('close() cancels the calls it holds and ends the 2025 sessions it opened upstream (DELETE)', async () => {
  const { g, hub } = await startEraHub();
  try {
    const res = await fetch(hub, {
      method: 'POST',
      headers: { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${g.aliceToken}`, 'mcp-method': 'tools/call', 'mcp-name': 'old__confirm' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'old__confirm', arguments: { action: 'ship' }, _meta: envelope } }),
    });
    const text = await res.text();
    assert.match(text, /input_required/, 'the upstream asked the client something: the registry holds its call');
    const old = g.upstreams.old!;
    const call = old.requests.find((r) => r.rpc === 'tools/call' && r.name === 'confirm')!;
    assert.ok(call?.sessionId, 'on a 2025 session the registry opened');
    assert.equal(old.requests.filter((r) => r.http === 'DELETE' || r.rpc === 'notifications/cancelled').length, 0);

    // As on SIGTERM: the sockets, then the registry, then its store.
    await g.registry.stop();

    const callId = (call.body as { id: number }).id;
    const cancelled = old.requests.filter((r) => r.rpc === 'notifications/cancelled');
    assert.deepEqual(
      cancelled.map((r) => [r.sessionId, (r.body as { params: { requestId: number } }).params.requestId]),
      [[call.sessionId, callId]],
      'the held call was cancelled at the upstream',
    );
    assert.deepEqual(old.requests.filter((r) => r.http === 'DELETE').map((r) => r.sessionId), [call.sessionId], 'its session ended at the upstream');
  } finally {
    await g.close();
  }
});
