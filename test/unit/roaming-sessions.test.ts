import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { PICK_UP_FOR_S, RoamingSessions } from '../../server/gateway/roaming-sessions.ts';
import { SessionBinding } from '../../server/gateway/session-binding.ts';
import { MemoryStore } from '../../server/store/memory-store.ts';

// What a 2025 session id of /mcp/{gateway} carries, and when another instance
// may open the session from it (frozen clock). The HTTP side, across two real
// instances: test/integration/cluster-sessions.test.ts.

const store = new MemoryStore();
after(() => store.close());
let now = Math.floor(Date.now() / 1000);
const key = randomBytes(32);
const sessions = new RoamingSessions(new SessionBinding(key), store, () => now);
/** Another instance: the same vault-derived key, the same database. */
const elsewhere = new RoamingSessions(new SessionBinding(key), store, () => now);
const init = { protocolVersion: '2025-11-25', capabilities: { elicitation: { url: {} }, roots: { listChanged: true } }, clientInfo: { name: 'Visual Studio Code', version: '1.120.0' } };

test('the id carries the initialize to another instance, for that caller on that gateway only; any change to it is no session', async () => {
  const { id, origin } = sessions.mint('alice', 'team', init);
  assert.match(id, /^[\x21-\x7e]+$/, 'visible ASCII, as Streamable HTTP asks of a session id');
  const read = await elsewhere.read('alice', 'team', id);
  assert.deepEqual(read, origin);
  assert.deepEqual([read!.v, read!.c, read!.i], [init.protocolVersion, init.capabilities, init.clientInfo]);
  assert.equal(await elsewhere.read('bob', 'team', id), undefined, 'another caller');
  assert.equal(await elsewhere.read('alice', 'other-gateway', id), undefined, 'another gateway');
  assert.equal(await elsewhere.read('alice', 'team', `${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`), undefined, 'a changed MAC');
  assert.equal(await elsewhere.read('alice', 'team', `x${id}`), undefined, 'a changed payload');
  assert.equal(await new RoamingSessions(new SessionBinding(randomBytes(32)), store, () => now).read('alice', 'team', id), undefined, 'another vault key');
  assert.equal(sessions.mint('alice', 'team', init).id === id, false, 'each session its own nonce');
});

test('a session is picked up for 24 hours after its initialize, not after', async () => {
  const { id } = sessions.mint('alice', 'team', init);
  now += PICK_UP_FOR_S - 1;
  assert.ok(await elsewhere.read('alice', 'team', id));
  now += 1;
  assert.equal(await elsewhere.read('alice', 'team', id), undefined);
});

test('a session ended on one instance is heard by the other and never picked up again', async () => {
  const { id, origin } = sessions.mint('alice', 'team', init);
  const heard: string[] = [];
  const stop = elsewhere.onEnded((nonce) => heard.push(nonce));
  await sessions.end('team', origin);
  stop();
  assert.deepEqual(heard, [origin.n]);
  assert.equal(await elsewhere.read('alice', 'team', id), undefined);
});

test('a client declaring many capabilities gets an id of bounded length that keeps the ones the gateway acts on', async () => {
  const big = { ...init, capabilities: { ...init.capabilities, sampling: {}, experimental: { padding: 'x'.repeat(4000) } } };
  const { id } = sessions.mint('alice', 'team', big);
  assert.ok(id.length <= 2048, `${id.length} characters`);
  assert.deepEqual((await elsewhere.read('alice', 'team', id))!.c, { elicitation: { url: {} }, roots: { listChanged: true }, sampling: {} });
  assert.equal(await elsewhere.read('alice', 'team', 'A'.repeat(10_000)), undefined, 'an oversized id is no session');
});
