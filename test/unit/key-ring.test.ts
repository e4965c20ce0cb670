import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromJwk, generate, KeyRing, RELOAD_INTERVAL_MS, type SigningKey } from '../../server/oauth/signing-keys.ts';

// KeyRing.lookup: a kid the ring does not know makes it read its source again
// (another instance may have rotated) before the token is refused, at most
// once per RELOAD_INTERVAL_MS, one read at a time (frozen clock).

const newKey = async (): Promise<SigningKey> => fromJwk('ES256', await generate('ES256'));

test('an unknown kid makes the ring read its source once; lookups at the same moment share that read, and the new key is found', async () => {
  const [first, second] = [await newKey(), await newKey()];
  let reads = 0;
  const ring: KeyRing = new KeyRing(first, [first], {
    reload: async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      ring.replace(second, [second, first]);
    },
    close: () => undefined,
    now: () => 1_000_000,
  });
  assert.equal(ring.find(second.kid), undefined);
  const found = await Promise.all([ring.lookup(second.kid), ring.lookup(second.kid), ring.lookup(second.kid)]);
  assert.equal(reads, 1);
  for (const key of found) assert.equal(key?.kid, second.kid);
  assert.equal(ring.active.kid, second.kid, 'the ring changed in place: it signs with the new key');
  assert.equal((await ring.lookup(first.kid))?.kid, first.kid, 'the previous key still verifies');
  assert.equal(reads, 1, 'a known kid reads nothing');
});

test('an unknown kid the source does not have either stays unknown, and makes the ring read again at most once per interval', async () => {
  const key = await newKey();
  let now = 1_000_000;
  let reads = 0;
  const ring = new KeyRing(key, [key], { reload: async () => void reads++, close: () => undefined, now: () => now });
  assert.equal(await ring.lookup('forged-1'), undefined);
  assert.equal(await ring.lookup('forged-2'), undefined);
  now += RELOAD_INTERVAL_MS - 1;
  assert.equal(await ring.lookup('forged-3'), undefined);
  assert.equal(reads, 1, 'within the interval: no second read');
  now += 1;
  assert.equal(await ring.lookup('forged-4'), undefined);
  assert.equal(reads, 2, 'after it: one more');
  assert.equal(await ring.lookup(undefined), undefined);
  assert.equal(reads, 2, 'no kid: nothing to look for');
});

test('a ring without a source (key files, lowdb) never reads anything: an unknown kid is simply unknown', async () => {
  const key = await newKey();
  const ring = new KeyRing(key, [key]);
  assert.equal(await ring.lookup('other'), undefined);
  assert.equal((await ring.lookup(key.kid))?.kid, key.kid);
});
