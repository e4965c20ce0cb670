import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken } from '../../server/inbound/authenticator.ts';

// The hand-written parser of the Authorization header must accept exactly what
// RFC 6750 §2.1's grammar (as the registry matched it before) accepts, and
// return the same token.
const GRAMMAR = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const oracle = (header: string) => GRAMMAR.exec(header)?.[1];

test('bearerToken: the cases of RFC 6750 §2.1, each as the grammar says', () => {
  const cases = [
    'Bearer abc', 'bearer abc', 'BEARER abc', 'BeArEr a.b-c_d~e+f/g==', 'Bearer   spaced', 'Bearer trailing   ',
    'Bearer', 'Bearer ', 'Bearer  ', 'Bearerabc', 'Basic YTpi', 'Bearer a b', 'Bearer a=b', 'Bearer =', 'Bearer ==abc',
    'Bearer abc\t', '\tBearer abc', ' Bearer abc', 'Bearer abc,', 'Bearer ab\u00e9', 'Bearer abc\n', 'Bearer\tabc', 'Bearer a==  ', 'Bearer é',
    'Token abc', 'Bearerr abc', 'Beare abc', '',
  ];
  for (const header of cases) assert.equal(bearerToken(header), oracle(header), JSON.stringify(header));
  assert.equal(bearerToken('Bearer a.b-c_d~e+f/g=='), 'a.b-c_d~e+f/g==');
});

test('bearerToken: random headers, 20,000 of them, agree with the grammar', () => {
  const alphabet = ['B', 'e', 'a', 'r', 'E', 'R', ' ', '=', '.', '-', '_', '~', '+', '/', 'x', 'Z', '9', '\t', ',', '"', 'é', '\u0000', ':'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    let header = next() < 0.7 ? (next() < 0.5 ? 'Bearer ' : 'bEaReR  ') : '';
    const length = Math.floor(next() * 12);
    for (let j = 0; j < length; j++) header += alphabet[Math.floor(next() * alphabet.length)];
    const expected = oracle(header);
    if (expected !== undefined) accepted++;
    assert.equal(bearerToken(header), expected, JSON.stringify(header));
  }
  // Both sides of the grammar were exercised.
  assert.ok(accepted > 1_000 && accepted < 19_000, `accepted ${accepted}`);
});
