import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, isLoopback, LoginThrottle } from '../../server/oauth/throttle.ts';

test('login throttle: per user and address, per address, per user, over a sliding window (frozen clock)', async () => {
  let now = 1000;
  const throttle = new LoginThrottle({ perUserAndAddress: { max: 3, windowSeconds: 60 }, perAddress: { max: 5, windowSeconds: 60 }, perUser: { max: 8, windowSeconds: 60 } }, () => now);
  for (let i = 0; i < 3; i++) await throttle.fail('alice', '10.0.0.1');
  assert.equal(await throttle.retryAfter('alice', '10.0.0.1'), 60);
  assert.equal(await throttle.retryAfter('ALICE', '10.0.0.1'), 60, 'usernames are counted case-insensitively');
  assert.equal(await throttle.retryAfter('alice', '10.0.0.2'), 0, 'another address is not held back by the pair rule');
  now += 30;
  assert.equal(await throttle.retryAfter('alice', '10.0.0.1'), 30);
  now += 31;
  assert.equal(await throttle.retryAfter('alice', '10.0.0.1'), 0, 'the window slides');

  // Per address: many usernames from one address.
  for (const u of ['a', 'b', 'c', 'd', 'e']) await throttle.fail(u, '10.0.0.9');
  assert.ok(await throttle.retryAfter('fresh-user', '10.0.0.9') > 0);

  // Per user: one username from many addresses (a distributed guess).
  for (let i = 0; i < 8; i++) await throttle.fail('bob', `10.1.0.${i}`);
  assert.ok(await throttle.retryAfter('bob', '10.2.0.1') > 0);

  // Success clears the pair.
  await throttle.fail('carol', '10.3.0.1');
  await throttle.fail('carol', '10.3.0.1');
  await throttle.succeed('carol', '10.3.0.1');
  await throttle.fail('carol', '10.3.0.1');
  assert.equal(await throttle.retryAfter('carol', '10.3.0.1'), 0);
});

test('per-address limits count IPv4 as is (mapped too) and IPv6 by its /64', () => {
  const cases: [string | undefined, string][] = [
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ];
  for (const [address, key] of cases) assert.equal(addressKey(address), key, String(address));
});

test('isLoopback: 127.0.0.0/8, ::1 and their mapped forms; nothing else', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::ffff:127.0.0.1', '::1', '0:0:0:0:0:0:0:1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', '::2', '2001:db8::1', 'fe80::1', undefined, '']) assert.equal(isLoopback(a), false, String(a));
});
