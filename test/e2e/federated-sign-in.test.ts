import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { type ClientCallback, startAuthorization as startAuthorizationFor, startClientCallback } from '../helpers/browser-client.ts';
import { IDP_CLIENT_ID, IDP_CLIENT_SECRET, startFederatedRegistry, type FederatedRegistry } from '../helpers/federated.ts';
import { tokenRequest } from '../helpers/oauth.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

// A person signs in to a federated registry in a real browser (Debian's
// Chromium): the registry sends them to the upstream IdP (a real
// oidc-provider), they sign in there, come back through /oauth/callback to
// the registry's consent page, and the client gets a code that is good for a
// token and a tool call. And the error page a tampered callback gets.

const shots = outputDir('federated-sign-in');
let idp: TestIdp;
let f: FederatedRegistry;
let browser: Browser;
let callback: ClientCallback;
let redirectUri: string;
let received: URL[];

before(async () => {
  idp = await startOidcProvider({
    accounts: [
      { sub: 'ada', password: 'ada-pw', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace' },
      { sub: 'eve', password: 'eve-pw', email: 'eve@elsewhere.example', email_verified: true, name: 'Eve' },
    ],
  });
  f = await startFederatedRegistry({ upstream_issuer: idp.issuer, allowed_domains: ['example.com'] });
  await idp.addClient({ client_id: IDP_CLIENT_ID, client_secret: IDP_CLIENT_SECRET, redirect_uris: [`${f.registry.url}/oauth/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] });
  browser = await launchChromium();
  callback = await startClientCallback();
  ({ redirectUri, received } = callback);
});
after(async () => {
  await browser?.close();
  callback?.close();
  await f?.close();
  await idp?.close();
});

const startAuthorization = () => startAuthorizationFor(f.registry.url, redirectUri, 'Federated Browser Client', 'fed');

describe('federated sign-in in Chromium', () => {
  test('the registry sends the person to the IdP, and back to its consent page, then to the client with a usable code', async () => {
    const { clientId, verifier, url } = await startAuthorization();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url.toString());
    assert.equal(new URL(page.url()).origin, idp.issuer, 'the browser is at the identity provider');
    await page.screenshot({ path: join(shots, '1-idp-login.png') });
    await page.fill('input[name=login]', 'ada');
    await page.fill('input[name=password]', 'ada-pw');
    await Promise.all([page.waitForSelector('button[value=approve]'), page.click('button[value=login]')]);
    assert.equal(new URL(page.url()).origin, f.registry.url, 'back at the registry');
    assert.equal(await page.title(), 'Allow access · Keygate');
    const consent = (await page.textContent('main'))!;
    assert.match(consent, /Federated Browser Client \(unverified name\)/);
    assert.match(consent, /Ada Lovelace/);
    await page.screenshot({ path: join(shots, '2-registry-consent.png') });
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('button[value=approve]')]);
    const landed = received.at(-1)!;
    assert.equal(landed.searchParams.get('state'), 'fed');
    assert.equal(landed.searchParams.get('iss'), f.registry.url);
    await context.close();

    const res = await tokenRequest(f.registry.url, { grant_type: 'authorization_code', client_id: clientId, code: landed.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier });
    assert.equal(res.status, 200);
    const { access_token } = (await res.json()) as { access_token: string };
    const call = await fetch(`${f.registry.url}/mcp/team/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'federated' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    assert.equal(call.status, 200);
  });

  test('a person outside allowed_domains is sent back to the client with access_denied', async () => {
    const { url } = await startAuthorization();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url.toString());
    await page.fill('input[name=login]', 'eve');
    await page.fill('input[name=password]', 'eve-pw');
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('button[value=login]')]);
    const landed = received.at(-1)!;
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.match(landed.searchParams.get('error_description')!, /limited to accounts of example\.com/);
    await context.close();
  });

  test('a callback with a forged state is a page that says so, and the browser stays at the registry', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${f.registry.url}/oauth/callback?code=stolen&state=${'A'.repeat(32)}.forged`);
    assert.equal(response!.status(), 400);
    assert.equal(await page.title(), 'This sign-in cannot be completed · Keygate');
    assert.match((await page.textContent('main'))!, /does not match a sign-in in progress/);
    await page.screenshot({ path: join(shots, '3-forged-state.png') });
    await page.close();
  });
});
