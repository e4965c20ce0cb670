import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEntry } from '../../server/audit/audit.ts';
import { ConnectionLog } from '../../server/audit/connections.ts';
import { memoryLogger } from '../../server/log.ts';
import { MemoryStore } from '../../server/store/memory-store.ts';

// The identities' last use (server/audit/connections.ts) goes with a deleted
// identity: its record leaves the store, and what this process held of it too.

const entry = (identity: string): AuditEntry => ({
  time: new Date().toISOString(), request_id: 'r', subject: 'alice', provider: 'builtin', client_id: 'c', gateway: 'team', server: 'demo',
  upstream: 'demo', identity, http_method: 'POST', method: 'tools/call', name: 'echo', outcome: 'ok', status: 200, latency_ms: 1,
});

test("a deleted identity's last use leaves the store; another identity's stays, and so does one only changed", async () => {
  const store = new MemoryStore();
  const log = new ConnectionLog(store, { knownGateway: () => true, log: memoryLogger() });
  for (const id of ['gone', 'kept']) await store.upsert('identities', id, { id });
  log.observe(entry('gone'));
  log.observe(entry('kept'));
  await log.flush();
  assert.deepEqual([...(await log.identitiesLastUsed()).keys()].sort(), ['gone', 'kept']);
  assert.ok(await store.find('identity_uses', 'gone'));

  await store.upsert('identities', 'kept', { id: 'kept', label: 'renamed' });
  await store.destroy('identities', 'gone');
  // (The change is heard before destroy resolves; what it does with it is a read and a delete.)
  for (let i = 0; i < 50 && (await store.find('identity_uses', 'gone')); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(await store.find('identity_uses', 'gone'), undefined);
  assert.deepEqual([...(await log.identitiesLastUsed()).keys()], ['kept']);
  await log.close();
});
