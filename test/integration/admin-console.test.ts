import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, callMethod, DAVE, startControlFixture } from '../helpers/control.ts';
import { type ConsoleBrowser, signInToConsole } from '../helpers/console.ts';
import { ALICE, BOB, type Fixture } from '../helpers/fixture.ts';
import { signInAdmin, tokenRequest } from '../helpers/oauth.ts';

// The web console at /admin over plain HTTP, as a browser with JavaScript off
// would use it: the registry's own sign-in, the security headers of every
// page, the CSRF token on every change, the capability each page and form
// needs (the admin API's rules), and no secret on any page. The e2e test
// (test/e2e/admin-console.test.ts) does every action in Chromium.

const PAGES = ['/admin', '/admin/gateways', '/admin/upstreams', '/admin/identities', '/admin/users', '/admin/clients', '/admin/connections', '/admin/audit', '/admin/changes'];
const HOSTILE = '<img src=x onerror=alert(1)>';

let f: Fixture;
let base: string;
let api: ReturnType<typeof apiClient>;
let carol: ConsoleBrowser;

before(async () => {
  f = await startControlFixture((config) => {
    config.gateways[0].name = HOSTILE;
  });
  base = f.registry.url;
  api = apiClient(base, (await signInAdmin(base, DAVE)).tokens.access_token);
  carol = await signInToConsole(base, CAROL);
});
after(() => f.close());

const gatewayDisabled = async (id: string) => ((await api.get(`/admin/gateways/${id}`)).body as { disabled: boolean }).disabled;

describe('the admin console: sign-in', () => {
  test('without a sign-in, a console page sends the browser to the registry login page, and a form post is refused', async () => {
    const res = await fetch(`${base}/admin/gateways`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const to = new URL(res.headers.get('location')!);
    assert.equal(to.pathname, '/oauth/authorize');
    assert.equal(to.searchParams.get('client_id'), 'keygate-web');
    assert.equal(to.searchParams.get('redirect_uri'), `${base}/admin/signed-in`);
    const post = await fetch(`${base}/admin/gateways/switch`, { method: 'POST', body: new URLSearchParams({ id: 'team', action: 'disable', reason: 'x' }), redirect: 'manual' });
    assert.equal(post.status, 401);
    assert.equal(await gatewayDisabled('team'), false);
  });

  test('the way back from the sign-in goes only to a console page', async () => {
    const res = await fetch(`${base}/admin/signed-in?state=forged`, { redirect: 'manual' });
    assert.equal(res.status, 400);
  });

  test('signing out needs the CSRF token, then ends the sign-in', async () => {
    const browser = await signInToConsole(base, CAROL);
    assert.equal((await browser.post('/admin/sign-out', {})).status, 403);
    assert.equal((await browser.get('/admin')).status, 200, 'still signed in');
    assert.equal((await browser.post('/admin/sign-out', { csrf: await browser.csrf() })).status, 200);
    assert.equal((await browser.get('/admin')).status, 303, 'signed out: back to the login page');
  });
});

describe('the admin console: security of every page', () => {
  test('every page has a nonce-only CSP, refuses framing, is never cached, and loads script and style only from /admin/assets with the nonce', async () => {
    for (const path of PAGES) {
      const res = await carol.get(path);
      assert.equal(res.status, 200, path);
      const csp = res.headers.get('content-security-policy')!;
      const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
      assert.ok(nonce, `${path}: ${csp}`);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, new RegExp(`style-src 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}'`));
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const page = await res.text();
      assert.doesNotMatch(page, /\sstyle="|\son[a-z]+="/i, `${path}: no inline style or handler attribute`);
      for (const tag of page.match(/<(script|link)\b[^>]*>/g) ?? []) {
        assert.ok(tag.includes(`nonce="${nonce}"`), `${path}: ${tag}`);
        assert.match(tag, /(src|href)="\/admin\/assets\//, `${path}: ${tag}`);
      }
      assert.match(page, /<a class="skip" href="#main">/);
    }
  });

  test('the assets are served as what they are, and nothing else is', async () => {
    const page = await (await carol.get('/admin/audit')).text();
    for (const src of page.match(/\/admin\/assets\/[^"]+/g)!) {
      const res = await fetch(`${base}${src}`);
      assert.equal(res.status, 200, src);
      assert.match(res.headers.get('content-type')!, src.includes('.css') ? /^text\/css/ : /^text\/javascript/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    assert.equal((await fetch(`${base}/admin/assets/..%2f..%2fpackage.json`)).status, 404);
    assert.equal((await fetch(`${base}/admin/assets/router.ts`)).status, 404);
  });

  test('the sign-in cookie is HttpOnly and SameSite', async () => {
    const res = await fetch(`${base}/admin`, { redirect: 'manual' });
    const login = await fetch(res.headers.get('location')!);
    const cookies = login.headers.getSetCookie();
    assert.ok(cookies.length);
    for (const c of cookies) assert.match(c, /HttpOnly; SameSite=Lax/);
  });

  test('names from the configuration are escaped on every page that shows them', async () => {
    for (const path of ['/admin/gateways']) {
      const page = await (await carol.get(path)).text();
      assert.ok(page.includes('&lt;img src=x onerror=alert(1)&gt;'), path);
      assert.ok(!page.includes(HOSTILE), path);
    }
  });

  test("no credential value on any page: not the service account's key", async () => {
    for (const path of PAGES) assert.ok(!(await (await carol.get(path)).text()).includes(f.apiKey), path);
  });
});

describe('the admin console: CSRF', () => {
  test('a break-glass switch without the CSRF token, with a wrong one, or from another origin is refused and changes nothing', async () => {
    const csrf = await carol.csrf();
    const fields = { id: 'team', action: 'disable', reason: 'forged' };
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ['no token', fields, {}],
      ['a wrong token', { ...fields, csrf: `${csrf.slice(0, -2)}xx` }, {}],
      ["another sign-in's token", { ...fields, csrf: await (await signInToConsole(base, DAVE)).csrf() }, {}],
      ['another origin', { ...fields, csrf }, { origin: 'https://evil.example' }],
    ];
    for (const [name, body, headers] of cases) {
      const res = await carol.post('/admin/gateways/switch', body, headers);
      assert.equal(res.status, 403, name);
      assert.match(await res.text(), /This form cannot be used/, name);
    }
    assert.equal(await gatewayDisabled('team'), false);
  });

  test("deactivating a person, and a client's new secret, are refused without the token", async () => {
    assert.equal((await carol.post('/admin/users/switch', { id: ALICE.username, action: 'disable', reason: 'forged' })).status, 403);
    assert.equal(((await api.get(`/admin/users/${ALICE.username}`)).body as { disabled: boolean }).disabled, false);
    const created = await api.post('/admin/clients', { client_id: 'csrf-bot', name: 'CSRF bot', grant_types: ['client_credentials'], scopes: ['mcp:read'] });
    assert.equal(created.status, 201);
    const res = await carol.post('/admin/clients/secret', { id: 'csrf-bot' });
    assert.equal(res.status, 403);
    const token = await tokenRequest(base, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`csrf-bot:${created.body.client_secret}`).toString('base64')}` });
    assert.equal(token.status, 200, 'the old secret still works');
  });

  test('a form too large, with too many fields or in an encoding it cannot read is a 413 or 400 page, never a 500, and changes nothing', async () => {
    const csrf = await carol.csrf();
    const big = await carol.post('/admin/gateways/switch', { csrf, id: 'team', action: 'disable', reason: 'x'.repeat(64 * 1024) });
    assert.equal(big.status, 413);
    assert.match(await big.text(), /too large/);
    const many = await carol.post('/admin/gateways/switch', { csrf, id: 'team', action: 'disable', reason: 'r', ...Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, 'v'])) });
    assert.equal(many.status, 413);
    assert.match(await many.text(), /too many fields/);
    const garbled = await carol.jar.fetch(`${base}/admin/gateways/switch`, { method: 'POST', body: 'csrf=x', headers: { origin: new URL(base).origin, 'content-type': 'application/x-www-form-urlencoded; charset=koi8-r' } });
    assert.equal(garbled.status, 400, 'a charset the form parser does not read');
    assert.match(await garbled.text(), /could not be read/);
    assert.equal(await gatewayDisabled('team'), false);
  });

  test('a switch needs a reason', async () => {
    const res = await carol.post('/admin/gateways/switch', { csrf: await carol.csrf(), id: 'team', action: 'disable', reason: '  ' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /give a reason/);
    assert.equal(await gatewayDisabled('team'), false);
  });
});

describe('the admin console: changes, as the API makes them', () => {
  test('a switch takes effect at once, shows on the page after the post, and is in the audit trail as a console change', async () => {
    const token = (await signInAdmin(base, ALICE)).tokens.access_token;
    assert.equal((await callEcho(`${base}/mcp/open/tools`, token)).status, 200);
    const res = await carol.post('/admin/gateways/switch', { csrf: await carol.csrf(), id: 'open', action: 'disable', reason: 'incident 42' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/admin/gateways?done=disable');
    assert.equal((await callEcho(`${base}/mcp/open/tools`, token)).reason, 'gateway_disabled');
    assert.match(await (await carol.get('/admin/gateways?done=disable')).text(), /disabled by carol, [^<]*: “incident 42”/);
    const { entries } = (await api.get('/audit?kind=admin&target=gateway:open')).body as { entries: { via: string; action: string; subject: string; reason: string; outcome: string; after: { disabled: boolean } }[] };
    assert.deepEqual(
      entries.map((e) => [e.via, e.action, e.subject, e.reason, e.outcome, e.after.disabled]),
      [['console', 'gateway.disable', 'carol', 'incident 42', 'ok', true]],
    );
    await carol.post('/admin/gateways/switch', { csrf: await carol.csrf(), id: 'open', action: 'enable', reason: 'resolved' });
    assert.equal((await callEcho(`${base}/mcp/open/tools`, token)).status, 200);
  });

  test("a client's new secret is on the answer to the post only, and it is the one that works", async () => {
    const created = await api.post('/admin/clients', { client_id: 'rotated-bot', name: 'Rotated bot', grant_types: ['client_credentials'], scopes: ['mcp:read'] });
    const res = await carol.post('/admin/clients/secret', { csrf: await carol.csrf(), id: 'rotated-bot' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const secret = /<p class="secret" id="client-secret">([^<]+)<\/p>/.exec(await res.text())?.[1];
    assert.ok(secret);
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(`rotated-bot:${s}`).toString('base64')}` });
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(secret))).status, 200);
    assert.equal((await tokenRequest(base, { grant_type: 'client_credentials' }, basic(created.body.client_secret))).status, 401);
    for (const path of PAGES) assert.ok(!(await (await carol.get(path)).text()).includes(secret), path);
  });

  test('a change the API refuses is refused here with its reason: a client from the configuration file gets no new secret', async () => {
    const res = await carol.post('/admin/clients/secret', { csrf: await carol.csrf(), id: 'keygate-web' });
    assert.equal(res.status, 409);
    assert.match(await res.text(), /built into the registry and is read-only here/);
  });
});

describe('the admin console: who may do what (no access.roles)', () => {
  test('who holds the scope mcp:admin administers; someone signed in without it is refused on every page and form', async () => {
    const bob = await signInToConsole(base, BOB);
    for (const path of PAGES) {
      const res = await bob.get(path);
      assert.equal(res.status, 403, path);
      assert.match(await res.text(), /does not hold the scope mcp:admin/);
    }
    const csrf = /name="csrf" value="([^"]+)"/.exec(await (await bob.get('/admin')).text())![1]!;
    assert.equal((await bob.post('/admin/gateways/switch', { csrf, id: 'team', action: 'disable', reason: 'not mine' })).status, 403);
    assert.equal(await gatewayDisabled('team'), false);
  });
});

describe('the admin console: who may do what (access.roles)', () => {
  let g: Fixture;
  let auditor: ConsoleBrowser;
  before(async () => {
    g = await startControlFixture((config) => {
      config.access = {
        roles: [
          { name: 'operators', capabilities: ['gateway_management', 'server_management', 'identity_management', 'user_management', 'client_management', 'audit_log'], members: { users: [CAROL.username] } },
          { name: 'auditors', capabilities: ['audit_log'], members: { users: [ALICE.username] } },
        ],
      };
    });
    auditor = await signInToConsole(g.registry.url, ALICE);
  });
  after(() => g.close());

  test('an auditor sees the overview and the audit pages only, and is refused the others', async () => {
    const overview = await (await auditor.get('/admin')).text();
    const nav = [...overview.matchAll(/<li><a href="\/admin([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(nav, ['', '/audit', '/changes']);
    for (const path of ['/admin/audit', '/admin/changes', '/admin/audit/export']) assert.equal((await auditor.get(path)).status, 200, path);
    for (const path of ['/admin/gateways', '/admin/upstreams', '/admin/identities', '/admin/users', '/admin/clients', '/admin/connections']) assert.equal((await auditor.get(path)).status, 403, path);
  });

  test("an auditor's forged posts are refused with 403, change nothing, and are recorded as denied", async () => {
    const csrf = await auditor.csrf();
    const admin = apiClient(g.registry.url, (await signInAdmin(g.registry.url, CAROL)).tokens.access_token);
    for (const [path, id] of [['/admin/gateways/switch', 'team'], ['/admin/users/switch', BOB.username], ['/admin/identities/switch', 'svc']] as const) {
      const res = await auditor.post(path, { csrf, id, action: 'disable', reason: 'forged' });
      assert.equal(res.status, 403, path);
      assert.match(await res.text(), /needs the capability/);
    }
    assert.equal((await auditor.post('/admin/clients/secret', { csrf, id: 'keygate-web' })).status, 403);
    assert.equal(((await admin.get('/admin/gateways/team')).body as { disabled: boolean }).disabled, false);
    assert.equal(((await admin.get(`/admin/users/${BOB.username}`)).body as { disabled: boolean }).disabled, false);
    const { entries } = (await admin.get('/audit?kind=admin&user=alice')).body as { entries: { via: string; action: string; outcome: string; error: string }[] };
    assert.deepEqual(
      entries.map((e) => [e.via, e.action, e.outcome, e.error]).reverse(),
      [
        ['console', 'gateway.disable', 'denied', 'insufficient_capability'],
        ['console', 'user.deactivate', 'denied', 'insufficient_capability'],
        ['console', 'identity.disable', 'denied', 'insufficient_capability'],
        ['console', 'client.rotate_secret', 'denied', 'insufficient_capability'],
      ],
    );
  });
});

describe('the admin console: the audit pages', () => {
  test('filters by server and tool narrow the requests on the page, in its export and in the API alike; a bad filter is a 400 page', async () => {
    const token = (await signInAdmin(base, ALICE)).tokens.access_token;
    for (const path of ['/mcp/open/tools', '/mcp/team/demo']) assert.equal((await callEcho(`${base}${path}`, token)).status, 200);
    assert.equal((await callMethod(`${base}/mcp/open/tools`, token, 'tools/list')).status, 200);
    const page = await (await carol.get('/admin/audit?server=tools&tool=echo')).text();
    const cells = [...page.matchAll(/<tr><td>[^<]+<\/td><td>[^<]*<\/td><td>([^<]+)<\/td><td>([^<]+)<\/td><td>([^<]*)<\/td>/g)].map((m) => [m[1], m[3]]);
    assert.ok(cells.length >= 1 && cells.every(([where, tool]) => where === 'open / tools' && tool === 'echo'), JSON.stringify(cells));
    const exported = (await (await carol.get('/admin/audit/export?server=tools&tool=echo')).text()).trim().split('\n').map((l) => JSON.parse(l) as { request_id: string; server: string; name: string });
    assert.equal(exported.length, cells.length);
    assert.ok(exported.every((e) => e.server === 'tools' && e.name === 'echo'));
    const viaApi = (await api.get('/audit?server=tools&tool=echo&limit=1000')).body.entries as { request_id: string }[];
    assert.deepEqual(viaApi.map((e) => e.request_id).sort(), exported.map((e) => e.request_id).sort());
    assert.equal(await (await carol.get('/admin/audit/export?server=tools&tool=nothing-by-that-name')).text(), '');
    for (const bad of ['since=yesterday', 'bogus=1', 'user=a&user=b']) assert.equal((await carol.get(`/admin/audit?${bad}`)).status, 400, bad);
  });
});
