import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { apiClient, CAROL, callEcho, DAVE, startControlFixture } from '../helpers/control.ts';
import { ALICE, BOB, type Fixture } from '../helpers/fixture.ts';
import { signIn, signInAdmin, tokenRequest } from '../helpers/oauth.ts';

// The admin console in Chromium, against a registry on port 0: an operator
// signs in through the registry's login page and does every action the
// console offers (click, fill, submit); each is checked from outside, as MCP
// clients and the admin API see it. An auditor (access.roles: audit_log only)
// sees only the audit pages and is refused a forged post. No page breaks the
// CSP, and no page holds a credential. Screenshots go to docs/console-*.png.

const shots = outputDir('admin-console');
const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
const ALICE_OWN = `alice-own-${randomBytes(12).toString('hex')}`;

let f: Fixture;
let base: string;
let admin: ReturnType<typeof apiClient>;
let browser: Browser;
let botSecret: string;
const tokens: Record<string, string> = {};
/** Every page's HTML, and every CSP complaint Chromium logged. */
const pages: { url: string; html: string }[] = [];
const violations: string[] = [];

before(async () => {
  f = await startControlFixture((config) => {
    config.gateways[0].servers[0].policies = [{ action: 'deny', tools: ['delete_*'], when: { groups: ['contractors'] }, reason: 'Contractors do not delete' }];
    config.gateways.push({ id: 'mine', name: 'Bring your own key', visibility: 'private', members: { users: ['alice'] }, servers: [{ upstream: 'demo', identity: 'per_user' }] });
    config.access = {
      roles: [
        { name: 'operators', capabilities: ['gateway_management', 'server_management', 'identity_management', 'user_management', 'client_management', 'audit_log'], members: { users: [CAROL.username, DAVE.username] } },
        { name: 'auditors', capabilities: ['audit_log'], members: { users: [ALICE.username] } },
      ],
    };
  });
  base = f.registry.url;
  admin = apiClient(base, (await signInAdmin(base, DAVE)).tokens.access_token);
  for (const user of [ALICE, BOB]) tokens[user.username] = (await signIn(base, user)).tokens.access_token;
  assert.equal((await apiClient(base, tokens.alice).post('/me/identities', { upstream: 'demo', label: "Alice's laptop key", token: ALICE_OWN })).status, 201);
  const bot = await admin.post('/admin/clients', { client_id: 'ci-bot', name: 'CI bot', grant_types: ['client_credentials'], scopes: ['mcp:read', 'mcp:write'] });
  botSecret = bot.body.client_secret;
  // Some traffic to look at: calls, and a refusal.
  for (let i = 0; i < 3; i++) {
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200);
    assert.equal((await callEcho(`${base}/mcp/open/tools`, tokens.bob)).status, 200);
  }
  assert.equal((await callEcho(`${base}/mcp/team/demo`, undefined)).status, 401);
  browser = await launchChromium();
}, { timeout: 60_000 });
after(async () => {
  await browser?.close();
  await f?.close();
});

async function newPage(context?: BrowserContext): Promise<Page> {
  const page = await (context ?? (await browser.newContext({ viewport: { width: 1280, height: 860 } }))).newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(`${page.url()}: ${m.text()}`);
  });
  page.setDefaultTimeout(20_000);
  return page;
}

/** Keep the page's HTML for the end's checks (no credential anywhere). */
async function keep(page: Page): Promise<void> {
  pages.push({ url: page.url(), html: await page.content() });
}

async function signInAs(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.goto(`${base}/admin`);
  assert.equal(await page.title(), 'Sign in · Keygate');
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await Promise.all([page.waitForURL(`${base}/admin`), page.click('button[type=submit]')]);
}

/** Fill the reason of one record's break-glass switch and click it; the page after the post is the group's, with a notice. */
async function flip(page: Page, group: string, id: string, reason: string): Promise<void> {
  if (!page.url().startsWith(`${base}/admin/${group}`)) await page.goto(`${base}/admin/${group}`);
  const form = page.locator(`form[action="/admin/${group}/switch"]:has(input[name=id][value="${id}"])`);
  await form.locator('input[name=reason]').fill(reason);
  await Promise.all([page.waitForURL(new RegExp(`/admin/${group}\\?done=`)), form.locator('button[type=submit]').click()]);
  assert.equal(await page.locator('p.notice').count(), 1, (await page.textContent('main')) ?? '');
  await keep(page);
}

const stateOf = (page: Page, id: string) => page.locator(`:is(tr, section):has(input[name=id][value="${id}"])`).first().locator('.badge.on, .badge.off').first().textContent();

async function screenshot(page: Page, name: string, dark = false): Promise<void> {
  await keep(page);
  await page.emulateMedia({ colorScheme: dark ? 'dark' : 'light' });
  await page.screenshot({ path: join(docs, `console-${name}-${dark ? 'dark' : 'light'}.png`) });
  await page.screenshot({ path: join(shots, `${name}-${dark ? 'dark' : 'light'}.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
}

describe('the admin console in Chromium', () => {
  test('an operator signs in through the login page and does every action; each takes effect at once for MCP clients and the admin API', { timeout: 120_000 }, async () => {
    const page = await newPage();
    const csp: string[] = [];
    page.on('response', (res) => {
      if (res.request().resourceType() === 'document' && res.url().startsWith(`${base}/admin`) && res.status() < 300) csp.push(res.headers()['content-security-policy'] ?? '');
    });
    await signInAs(page, CAROL);
    assert.equal(await page.title(), 'Overview · Keygate console');
    assert.match((await page.textContent('main'))!, /Recent refusals[\s\S]*anonymous/);
    await screenshot(page, 'overview');

    // Gateways: servers, scheme, members, policies; the break-glass switch.
    await page.goto(`${base}/admin/gateways`);
    const team = (await page.textContent('section:has(#gw-team)'))!;
    for (const fact of ['private (signed-in callers)', 'shared (svc)', 'deny tools delete_* when groups: contractors', 'Contractors do not delete', 'from the configuration file']) assert.ok(team.includes(fact), fact);
    assert.match((await page.textContent('section:has(#gw-mine)'))!, /users: alice[\s\S]*per user/);
    await screenshot(page, 'gateways');
    await flip(page, 'gateways', 'open', 'incident 7: a leaking tool');
    assert.equal(await stateOf(page, 'open'), 'Disabled');
    assert.match((await page.textContent('section:has(#gw-open)'))!, /disabled by carol, .*: “incident 7: a leaking tool”/);
    assert.equal((await callEcho(`${base}/mcp/open/tools`, tokens.bob)).reason, 'gateway_disabled');
    assert.equal((await admin.get('/admin/gateways/open')).body.disabled, true);
    await flip(page, 'gateways', 'open', 'fixed');
    assert.equal((await callEcho(`${base}/mcp/open/tools`, tokens.bob)).status, 200);

    // Upstreams.
    await flip(page, 'upstreams', 'demo', 'upstream compromised');
    assert.equal(await stateOf(page, 'demo'), 'Disabled');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).reason, 'upstream_disabled');
    await flip(page, 'upstreams', 'demo', 'rotated');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200);

    // Identities: shared and people's, owner and last use, never a value.
    await page.goto(`${base}/admin/identities`);
    const svc = (await page.textContent('tr:has(input[name=id][value="svc"])'))!;
    assert.match(svc, /Service account svc from the configuration file/);
    assert.doesNotMatch(svc, /—/, 'svc was used: its last use is shown');
    assert.match((await page.textContent('table:below(h2:has-text("People\'s own"))'))!, /Alice's laptop key[\s\S]*alice/);
    await flip(page, 'identities', 'svc', 'key leaked');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).reason, 'identity_disabled');
    await flip(page, 'identities', 'svc', 'key rotated');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200);

    // Connections: one person's use of one gateway from one client.
    const connection = ((await admin.get('/admin/connections?user=alice&gateway=team')).body.connections as { id: string }[])[0]!;
    await flip(page, 'connections', connection.id, 'lost laptop');
    assert.deepEqual(await callEcho(`${base}/mcp/team/demo`, tokens.alice).then((r) => [r.status, r.reason]), [403, 'connection_disabled']);
    assert.equal((await callEcho(`${base}/mcp/open/tools`, tokens.bob)).status, 200, 'others keep working');
    await flip(page, 'connections', connection.id, 'found it');
    assert.equal((await callEcho(`${base}/mcp/team/demo`, tokens.alice)).status, 200);

    // Users: deactivating is offboarding.
    await flip(page, 'users', 'bob', 'left the company');
    assert.match((await page.textContent('p.notice'))!, /Deactivated/);
    assert.equal(await stateOf(page, 'bob'), 'Deactivated');
    assert.deepEqual(await callEcho(`${base}/mcp/open/tools`, tokens.bob).then((r) => [r.status, r.reason]), [401, 'user_disabled']);
    assert.equal((await admin.get('/admin/users/bob')).body.disabled, true);
    await screenshot(page, 'users', true);
    await flip(page, 'users', 'bob', 'came back');
    assert.equal((await callEcho(`${base}/mcp/open/tools`, tokens.bob)).status, 401, 'his old grants stay ended');
    assert.equal((await callEcho(`${base}/mcp/open/tools`, (await signIn(base, BOB)).tokens.access_token)).status, 200);

    // OAuth clients: disable, enable, a new secret shown once.
    const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`ci-bot:${secret}`).toString('base64')}` });
    await flip(page, 'clients', 'ci-bot', 'suspicious traffic');
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(botSecret))).status, 401);
    await flip(page, 'clients', 'ci-bot', 'cleared');
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(botSecret))).status, 200);
    assert.equal(await page.locator('form[action="/admin/clients/secret"]:has(input[value="keygate-web"])').count(), 0, 'built-in clients get no new secret');
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("New secret for client ci-bot")')]);
    const newSecret = (await page.textContent('#client-secret'))!;
    await keep(page);
    assert.match(newSecret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(newSecret))).status, 200);
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(botSecret))).status, 401);
    await page.goto(`${base}/admin/clients`);
    await keep(page);
    assert.ok(!(await page.content()).includes(newSecret), 'shown once');

    // The audit log: a filtered view in the query string, its export, the chart.
    await page.goto(`${base}/admin/audit`);
    await page.fill('#f-gateway', 'team');
    await page.fill('#f-outcome', 'error');
    await Promise.all([page.waitForURL(/\/admin\/audit\?/), page.click('button:has-text("Filter")')]);
    const query = new URL(page.url()).searchParams;
    assert.deepEqual([query.get('gateway'), query.get('outcome')], ['team', 'error']);
    const outcomes = await page.locator('main > table tbody tr td:nth-child(6) .badge').allTextContents();
    assert.ok(outcomes.length >= 4 && outcomes.every((o) => o !== 'ok'), outcomes.join());
    assert.ok((await page.locator('main > table tbody tr td:nth-child(3)').allTextContents()).every((g) => g.startsWith('team')));
    // The export link (a download), fetched with this browser's sign-in.
    const exportLink = page.locator('a:has-text("Export this view as JSONL")');
    assert.equal(await exportLink.getAttribute('download'), '');
    const exported = await page.context().request.get(new URL((await exportLink.getAttribute('href'))!, base).toString());
    assert.match(exported.headers()['content-disposition']!, /^attachment/);
    const lines = (await exported.text()).trim().split('\n').map((l) => JSON.parse(l) as { gateway: string; outcome: string });
    assert.equal(lines.length, outcomes.length);
    assert.ok(lines.every((e) => e.gateway === 'team' && e.outcome !== 'ok'));
    await page.goto(`${base}/admin/audit`);
    await page.waitForFunction(() => (window as unknown as { Chart: { getChart(c: unknown): unknown } }).Chart.getChart(document.getElementById('audit-chart')) !== undefined);
    assert.match((await page.textContent('#chart-summary'))!, /open \d+ calls, \d+ refused; team \d+ calls, [1-9]\d* refused/);
    await screenshot(page, 'audit');
    await screenshot(page, 'audit', true);

    // The admin changes made here, from the audit trail.
    await page.goto(`${base}/admin/changes?user=carol`);
    await keep(page);
    const rows = await page.locator('tbody tr').allTextContents();
    for (const action of ['gateway.disable', 'upstream.disable', 'identity.disable', 'connection.disable', 'user.deactivate', 'user.reactivate', 'client.disable', 'client.rotate_secret']) {
      assert.ok(rows.some((r) => r.includes(action) && r.includes('console')), action);
    }
    const trail = (await admin.get('/audit?kind=admin&user=carol&action=user.deactivate')).body.entries as { via: string; reason: string }[];
    assert.deepEqual(trail.map((e) => [e.via, e.reason]), [['console', 'left the company']]);

    // Signing out ends the sign-in.
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("Sign out")')]);
    assert.equal(await page.title(), 'Signed out · Keygate');
    await page.goto(`${base}/admin`);
    assert.equal(await page.title(), 'Sign in · Keygate');

    for (const header of csp) {
      // Script only with the response's nonce (the signed-out page allows none at all).
      assert.match(header, /default-src 'none'/);
      assert.ok(!/script-src/.test(header) || /script-src 'nonce-[^']+';/.test(header), header);
      assert.doesNotMatch(header, /unsafe-inline|unsafe-eval/);
      assert.match(header, /frame-ancestors 'none'/);
    }
    assert.ok(csp.length >= 20, `${csp.length} console pages`);
    const withSecret = pages.filter((p) => p.html.includes(newSecret));
    assert.equal(withSecret.length, 1, 'the new secret is on the page answering the post only');
    await page.context().close();
  });

  test('keyboard: a skip link first, every field labelled, focus visible', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await signInAs(page, DAVE);
    for (const path of ['', '/gateways', '/upstreams', '/identities', '/users', '/clients', '/connections', '/audit', '/changes']) {
      await page.goto(`${base}/admin${path}`);
      await keep(page);
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((i) => !(i as HTMLInputElement).labels?.length).map((i) => i.outerHTML));
      assert.deepEqual(unlabelled, [], path);
      assert.equal(await page.locator('[onclick], div[role=button], a[href="#"]').count(), 0, path);
    }
    await page.goto(`${base}/admin/gateways`);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.equal(outline, 'solid', 'focus is visible');
    await page.context().close();
  });

  test('an auditor sees only the audit pages, and a forged post without the capability or without the CSRF token is refused', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await signInAs(page, ALICE);
    assert.deepEqual(await page.locator('header nav a').allTextContents(), ['Overview', 'Audit', 'Admin changes']);
    assert.equal((await page.goto(`${base}/admin/gateways`))!.status(), 403);
    assert.equal((await page.goto(`${base}/admin/users`))!.status(), 403);
    assert.equal((await page.goto(`${base}/admin/audit`))!.status(), 200);
    const csrf = (await page.getAttribute('input[name=csrf]', 'value'))!;
    const forged = await page.context().request.post(`${base}/admin/gateways/switch`, { form: { csrf, id: 'team', action: 'disable', reason: 'not mine to flip' }, headers: { origin: base }, maxRedirects: 0 });
    assert.equal(forged.status(), 403);
    assert.match(await forged.text(), /needs the capability gateway_management/);
    const noToken = await page.context().request.post(`${base}/admin/gateways/switch`, { form: { id: 'team', action: 'disable', reason: 'x' }, headers: { origin: base }, maxRedirects: 0 });
    assert.equal(noToken.status(), 403);
    assert.equal((await admin.get('/admin/gateways/team')).body.disabled, false);
    await page.context().close();
  });

  test('no page broke the CSP, and no page held a credential', () => {
    assert.deepEqual(violations, []);
    assert.ok(pages.length >= 25, `${pages.length} pages`);
    for (const p of pages) for (const secret of [f.apiKey, ALICE_OWN, botSecret]) assert.ok(!p.html.includes(secret), p.url);
  });
});
