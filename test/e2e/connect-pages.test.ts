import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn } from '../helpers/oauth.ts';
import { startOAuthUpstream } from '../helpers/oauth-upstream.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

// A person without the extension connects their identities on the registry's
// connect pages, in Chromium: credential fields for one server, OAuth at the
// upstream's own sign-in for another; then their calls run as them.

const shots = outputDir('connect-pages');
const demoKey = `demo-${randomBytes(8).toString('hex')}`;
let demo: DemoUpstream;
let idp: TestIdp;
let linear: Awaited<ReturnType<typeof startOAuthUpstream>>;
let r: TestRegistry;
let browser: Browser;

before(async () => {
  demo = await startDemoUpstream({ apiKey: demoKey });
  idp = await startOidcProvider({ registration: true, accounts: [{ sub: 'alice-at-linear', password: 'linear-pw' }] });
  linear = await startOAuthUpstream(idp.issuer);
  r = await startRegistry(
    {
      outbound: { allow_loopback: true },
      oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'A', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [
        {
          id: 'demo',
          name: 'Demo tools',
          description: 'The demo upstream: it wants your API key.',
          url: demo.url,
          credential: { type: 'fields', fields: [{ name: 'api_key', label: 'API key', placeholder: 'demo-…', description: 'Printed by the demo dashboard' }], inject: { header: 'Authorization', value: 'Bearer {api_key}' } },
        },
        { id: 'linear', name: 'Linear', url: linear.url, credential: { type: 'oauth', scopes: ['mcp:read'] } },
      ],
      gateways: [{ id: 'team', name: 'Team', servers: [{ upstream: 'demo', identity: 'per_user' }, { upstream: 'linear', identity: 'per_user' }] }],
    },
    { A: ALICE.password },
  );
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await r?.close();
  await linear?.close();
  await idp?.close();
  await demo?.close();
});

async function call(server: string, token: string, tool: string, args: Record<string, unknown>) {
  const res = await fetch(`${r.url}/mcp/team/${server}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  return { status: res.status, text: await res.text() };
}

describe('the connect pages in Chromium', () => {
  test('sign in, fill the credential fields, connect OAuth at the upstream; calls then run as the person', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${r.url}/connect`);
    // Not signed in: the registry's login page, then back to the connect pages.
    assert.equal(await page.title(), 'Sign in · Keygate');
    await page.fill('input[name=username]', ALICE.username);
    await page.fill('input[name=password]', ALICE.password);
    await Promise.all([page.waitForURL(`${r.url}/connect`), page.click('button[type=submit]')]);
    assert.equal(await page.title(), 'Your servers · Keygate');
    assert.equal(await page.locator('.state').count(), 2);
    assert.deepEqual(await page.locator('.state').allTextContents(), ['Needs credentials', 'Needs authorization']);
    await page.screenshot({ path: join(shots, '1-servers.png'), fullPage: true });

    // Credential fields.
    await page.click('a:has-text("Connect") >> nth=0');
    assert.equal(await page.getAttribute('input[name=field_api_key]', 'type'), 'password');
    assert.equal(await page.getAttribute('input[name=field_api_key]', 'placeholder'), 'demo-…');
    await page.screenshot({ path: join(shots, '2-fields-form.png'), fullPage: true });
    await page.fill('input[name=field_api_key]', demoKey);
    await page.click('button:has-text("Save")');
    await page.waitForLoadState('load');
    if (!/done=saved/.test(page.url())) assert.fail(`not saved: ${page.url()} ${await page.textContent('main')}`);
    assert.equal(await page.textContent('.state'), 'Ready');
    assert.equal(await page.inputValue('input[name=field_api_key]'), '', 'the secret is never shown back');
    assert.ok(!(await page.content()).includes(demoKey));
    await page.screenshot({ path: join(shots, '3-fields-saved.png'), fullPage: true });

    // OAuth at the upstream's own authorization server.
    await page.goto(`${r.url}/connect/team/linear`);
    assert.match((await page.textContent('main'))!, /Keygate will send you to Linear to sign in/);
    await page.screenshot({ path: join(shots, '4-oauth-explained.png'), fullPage: true });
    await Promise.all([page.waitForURL(new RegExp(`^${idp.issuer}/interaction/`)), page.click('button:has-text("Continue to Linear")')]);
    await page.screenshot({ path: join(shots, '5-upstream-login.png'), fullPage: true });
    await page.fill('input[name=login]', 'alice-at-linear');
    await page.fill('input[name=password]', 'linear-pw');
    await Promise.all([page.waitForURL(/\/connect\/team\/linear\?done=connected/), page.click('button[value=login]')]);
    assert.match((await page.textContent('.ok'))!, /Connected/);
    assert.equal(await page.textContent('.state'), 'Ready');
    await page.screenshot({ path: join(shots, '6-oauth-connected.png'), fullPage: true });
    await page.close();

    // The same person's MCP client now reaches both servers as them.
    const token = (await signIn(r.url, ALICE)).tokens.access_token;
    assert.equal((await call('demo', token, 'echo', { message: 'hi' })).status, 200);
    assert.equal(demo.seen.at(-1)!.authorization, `Bearer ${demoKey}`);
    assert.match((await call('linear', token, 'whoami', {})).text, /alice-at-linear/);
  });
});
