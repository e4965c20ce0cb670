import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startFixture, type Fixture } from '../helpers/fixture.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

// Issue 12, another issuer's JWKS endpoint down: the keys fetched before keep
// validating that issuer's tokens (new ones too, past refresh_interval), a kid
// it never published is refused clearly, and once the endpoint is back a
// rotated key is picked up, without a restart. The IdP is a real
// oidc-provider; its JWKS is reached through a switchable fault.

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let idp: TestIdp;
let fault: FaultProxy;
let f: Fixture;
let n = 0;

before(async () => {
  idp = await startOidcProvider({});
  fault = await startFaultProxy(`${idp.issuer}/jwks`);
  f = await startFixture((config) => {
    config.outbound = { allow_loopback: true };
    config.auth = { type: 'oauth', oauth: { issuer: idp.issuer, jwks_url: fault.url, jwks: { refresh_interval: '1s', cooldown: '1s', fetch_timeout: '1s' } } };
  });
});
after(async () => {
  await f?.close();
  await fault?.close();
  await idp?.close();
});

/** A token the IdP's current key signs, never seen before (so never in the registry's token cache). */
const fresh = () => idp.sign({ iss: idp.issuer, sub: `person-${++n}`, aud: f.registry.url, iat: now(), exp: now() + 300 });
const me = (token: string) => fetch(`${f.registry.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });

describe('the JWKS endpoint of another issuer fails', () => {
  for (const down of ['down', 'http-500', 'hang'] as Fault[]) {
    test(`${down}: tokens signed with a key fetched before keep validating past refresh_interval; recovery is picked up`, { timeout: 30_000 }, async () => {
      await fault.set('pass');
      assert.equal((await me(await fresh())).status, 200, 'the keys are fetched');
      await fault.set(down);
      await sleep(1_100); // past refresh_interval: the key set is stale, and a refetch fails
      const during = fault.requests;
      for (let i = 0; i < 3; i++) assert.equal((await me(await fresh())).status, 200, 'verified with the keys fetched before');
      assert.ok(fault.requests - during <= 1, 'a failing endpoint is tried at most once per cooldown, not on every token');
      await fault.set('pass');
      await sleep(1_100); // past the cooldown
      assert.equal((await me(await fresh())).status, 200);
    });
  }

  test('while it is down, a kid it never published is refused, saying so; back up, the rotated key is picked up', { timeout: 30_000 }, async () => {
    await fault.set('pass');
    assert.equal((await me(await fresh())).status, 200);
    await fault.set('down');
    await idp.rotateKeys();
    await sleep(1_100);
    const refused = await me(await fresh());
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate')!, /error="invalid_token".*no key of the issuer.s JWKS matches the access token.s kid/);
    await fault.set('pass');
    await sleep(1_100);
    assert.equal((await me(await fresh())).status, 200, 'the rotated key, fetched once the endpoint answers');
  });

  test('a JWKS never fetched cannot vouch for anything: the token is refused with 503, not accepted', { timeout: 30_000 }, async () => {
    const cold = await startFaultProxy(`${idp.issuer}/jwks`);
    await cold.set('down');
    const g = await startFixture((config) => {
      config.outbound = { allow_loopback: true };
      config.auth = { type: 'oauth', oauth: { issuer: idp.issuer, jwks_url: cold.url, jwks: { fetch_timeout: '1s' } } };
    });
    try {
      const token = await idp.sign({ iss: idp.issuer, sub: 'cold', aud: g.registry.url, iat: now(), exp: now() + 300 });
      const res = await fetch(`${g.registry.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 503);
      assert.ok(!JSON.stringify(g.registry.log.lines ?? '').includes(token), 'the token never reaches the log');
    } finally {
      await g.close();
      await cold.close();
    }
  });
});
