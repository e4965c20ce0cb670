import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { type ClientCallback, startAuthorization as startAuthorizationFor, startClientCallback } from '../helpers/browser-client.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeUrl, pkce, tokenRequest } from '../helpers/oauth.ts';

// A person signs in on the registry's login page in a real browser (Debian's
// Chromium): the page works with JavaScript on and off, shows a wrong password
// as an error, and hands the code to the client's loopback redirect URI.

const shots = outputDir('sign-in-page');
let f: Fixture;
let browser: Browser;
let callback: ClientCallback;
let redirectUri: string;
let received: URL[];

before(async () => {
  f = await startFixture();
  browser = await launchChromium();
  callback = await startClientCallback();
  ({ redirectUri, received } = callback);
});
after(async () => {
  await browser?.close();
  callback?.close();
  await f?.close();
});

const startAuthorization = () => startAuthorizationFor(f.registry.url, redirectUri, 'Browser Test Client', 'xyz');

describe('the login page in Chromium', () => {
  for (const javaScriptEnabled of [true, false]) {
    test(`signs in and redirects to the client with JavaScript ${javaScriptEnabled ? 'on' : 'off'}`, async () => {
      const { clientId, verifier, url } = await startAuthorization();
      const context = await browser.newContext({ javaScriptEnabled });
      const page = await context.newPage();
      await page.goto(url.toString());
      assert.equal(await page.title(), 'Sign in · Keygate');
      assert.match((await page.textContent('main'))!, /Browser Test Client/);
      await page.screenshot({ path: join(shots, `1-login-js-${javaScriptEnabled ? 'on' : 'off'}.png`) });
      await page.fill('input[name=username]', ALICE.username);
      await page.fill('input[name=password]', ALICE.password);
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      // A new client: the consent page names it, what it may do, and where the browser returns.
      await page.waitForSelector('button[value=approve]');
      assert.equal(await page.title(), 'Allow access · Keygate');
      const consent = (await page.textContent('main'))!;
      assert.match(consent, /Browser Test Client \(unverified name\)/);
      assert.match(consent, new RegExp(`${f.registry.url}/mcp/team`));
      assert.match(consent, new RegExp(new URL(redirectUri).host));
      await page.screenshot({ path: join(shots, `2-consent-js-${javaScriptEnabled ? 'on' : 'off'}.png`) });
      await Promise.all([page.waitForURL(/\/callback\?/), page.click('button[value=approve]')]);
      await page.screenshot({ path: join(shots, `3-redirected-js-${javaScriptEnabled ? 'on' : 'off'}.png`) });
      const landed = received.at(-1)!;
      assert.equal(landed.searchParams.get('state'), 'xyz');
      assert.equal(landed.searchParams.get('iss'), f.registry.url);
      await context.close();

      // The code the browser delivered is good for a token, and the token for the gateway.
      const res = await tokenRequest(f.registry.url, { grant_type: 'authorization_code', client_id: clientId, code: landed.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier });
      assert.equal(res.status, 200);
      const { access_token } = (await res.json()) as { access_token: string };
      const listing = await fetch(`${f.registry.url}/api/v1/gateways`, { headers: { authorization: `Bearer ${access_token}` } });
      assert.equal(listing.status, 401, 'a token for /mcp/team is not good for the API');
      const call = await fetch(`${f.registry.url}/mcp/team/demo`, {
        method: 'POST',
        headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'from the browser' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
      });
      assert.equal(call.status, 200);
    });
  }

  test('the browser stays signed in: a second client gets the consent page without a login, and Deny goes back as access_denied', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await startAuthorization();
    await page.goto(first.url.toString());
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', ALICE.password);
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('button[value=approve]')]);

    const second = await startAuthorization();
    await page.goto(second.url.toString());
    assert.equal(await page.title(), 'Allow access · Keygate', 'no login form: the registry remembers this browser');
    await page.screenshot({ path: join(shots, '6-consent-without-login.png') });
    await Promise.all([page.waitForURL(/\/callback\?/), page.click('button[value=deny]')]);
    const landed = received.at(-1)!;
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.equal(landed.searchParams.get('code'), null);

    // The first client was approved once: asking again needs no consent page either.
    const again = authorizeUrl(f.registry.url, Object.fromEntries(new URL(first.url).searchParams));
    await Promise.all([page.waitForURL(/\/callback\?/), page.goto(again.toString())]);
    assert.ok(received.at(-1)!.searchParams.get('code'));
    await context.close();
  });

  test('the consent page in a narrow window: no word is broken across lines, long URLs wrap instead of overflowing', async () => {
    for (const width of [320, 420, 800]) {
      const { url } = await startAuthorization();
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      await page.goto(url.toString());
      await page.fill('input[name=username]', ALICE.username);
      await page.fill('input[name=password]', ALICE.password);
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      await page.waitForSelector('button[value=approve]');
      // Each word of the descriptions (the dd items without code) sits on one line: one client rect per word.
      const broken = await page.evaluate(() => {
        const split: string[] = [];
        for (const dd of document.querySelectorAll('dd')) {
          if (dd.querySelector('code')) continue;
          const text = dd.firstChild;
          if (!text || text.nodeType !== Node.TEXT_NODE) continue;
          const value = text.textContent ?? '';
          for (const m of value.matchAll(/\S+/g)) {
            const range = document.createRange();
            range.setStart(text, m.index);
            range.setEnd(text, m.index + m[0].length);
            if (range.getClientRects().length > 1) split.push(m[0]);
          }
        }
        return split;
      });
      assert.deepEqual(broken, [], `words broken across lines at ${width}px`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a ${width}px window`);
      await page.screenshot({ path: join(shots, `7-consent-${width}px.png`), fullPage: true });
      await context.close();
    }
  });

  test('a wrong password is shown on the page and nothing is redirected', async () => {
    const { url } = await startAuthorization();
    const before = received.length;
    const page = await browser.newPage();
    await page.goto(url.toString());
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', 'wrong');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    await page.waitForSelector('.error');
    assert.equal(await page.textContent('.error'), 'Wrong username or password.');
    assert.equal(await page.inputValue('input[name=password]'), '', 'the password is not echoed back');
    assert.equal(await page.inputValue('input[name=username]'), ALICE.username, 'the username is kept');
    await page.screenshot({ path: join(shots, '4-wrong-password.png') });
    assert.equal(received.length, before);
    await page.close();
  });

  test('a bad redirect URI shows an error page and the browser stays on the registry', async () => {
    const { clientId } = await startAuthorization();
    const page = await browser.newPage();
    const url = authorizeUrl(f.registry.url, { response_type: 'code', client_id: clientId, redirect_uri: 'https://attacker.example/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    const response = await page.goto(url.toString());
    assert.equal(response!.status(), 400);
    assert.equal(new URL(page.url()).origin, f.registry.url);
    assert.match((await page.textContent('main'))!, /redirect_uri is not registered/);
    await page.screenshot({ path: join(shots, '5-bad-redirect.png') });
    await page.close();
  });
});
