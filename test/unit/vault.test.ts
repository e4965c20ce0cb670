import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Vault, VaultError } from '../../server/vault/vault.ts';

test('sealing uses a fresh nonce each time and opens only in its own context', () => {
  const vault = Vault.fromKeys([randomBytes(32)]);
  const a = vault.seal('sk-secret', 'identities/one');
  const b = vault.seal('sk-secret', 'identities/one');
  assert.notEqual(a.iv, b.iv);
  assert.notEqual(a.ct, b.ct);
  assert.equal(vault.open(a, 'identities/one'), 'sk-secret');
  // The AAD binds the ciphertext to its record: copied into another, it does not open.
  assert.throws(() => vault.open(a, 'identities/two'), (err: unknown) => err instanceof VaultError && !String(err).includes('sk-secret'));
});

test('a tampered ciphertext, nonce or key id does not open', () => {
  const vault = Vault.fromKeys([randomBytes(32)]);
  const sealed = vault.seal('value', 'ctx');
  const flip = (s: string) => Buffer.from(Buffer.from(s, 'base64url').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64url');
  assert.throws(() => vault.open({ ...sealed, ct: flip(sealed.ct) }, 'ctx'), VaultError);
  assert.throws(() => vault.open({ ...sealed, iv: flip(sealed.iv) }, 'ctx'), VaultError);
  assert.throws(() => vault.open({ ...sealed, kid: 'unknown' }, 'ctx'), /no vault key with id unknown/);
  assert.throws(() => vault.open({ ...sealed, ct: 'AA' }, 'ctx'), /too short/);
});

test('another key cannot open it; a ring with the old key can, and reseal moves it to the active key', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const sealed = Vault.fromKeys([oldKey]).seal('value', 'ctx');
  assert.throws(() => Vault.fromKeys([newKey]).open(sealed, 'ctx'), VaultError);
  const ring = Vault.fromKeys([newKey, oldKey]);
  assert.equal(ring.open(sealed, 'ctx'), 'value');
  const moved = ring.reseal(sealed, 'ctx');
  assert.equal(moved.kid, ring.activeKeyId);
  assert.equal(Vault.fromKeys([newKey]).open(moved, 'ctx'), 'value');
  assert.equal(ring.reseal(moved, 'ctx'), moved, 'already under the active key: unchanged');
});

test('derived keys differ by purpose and are stable', () => {
  const key = randomBytes(32);
  const a = Vault.fromKeys([key]);
  assert.deepEqual(a.derive('x'), Vault.fromKeys([key]).derive('x'));
  assert.notDeepEqual(a.derive('x'), a.derive('y'));
});
