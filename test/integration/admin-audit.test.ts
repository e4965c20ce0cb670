import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { apiClient, CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import { ALICE, BOB, type Fixture } from '../helpers/fixture.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { BIN } from '../helpers/spawn.ts';

// Admin changes in the audit log (issue 9, item 12): every change made through
// /api/v1/admin, and so through `keygate-registry admin`, is recorded with who
// made it (and via the API or the CLI), the action and its target, when, how it
// ended, and the target as GET shows it before and after; never a secret.
// A signed-in caller's refused attempt is recorded as denied. The records are
// queried and exported as MCP calls are, and checked here from outside: the
// audit API, its export, the CLI, and the raw bytes of the audit files.

const SVC_TOKEN = 'svc-account-token-admin-audit-7c1e5a';
const ROTATED_TOKEN = 'svc-account-token-rotated-0b9d44';
const FIELD_SECRET = 'field-secret-admin-audit-93f2aa';
const ALICE_SECRET = 'alice-own-token-admin-audit-5e6f70';

let f: Fixture;
let base: string;
let carolToken: string;
let aliceToken: string;
let admin: ReturnType<typeof apiClient>;
let alice: ReturnType<typeof apiClient>;
/** Every secret value the test handed the registry or was handed by it: none may be in the audit. */
const secrets: string[] = [SVC_TOKEN, ROTATED_TOKEN, FIELD_SECRET, ALICE_SECRET, ALICE.password, BOB.password, CAROL.password];

type Change = {
  kind: 'admin';
  time: string;
  subject: string;
  provider: string;
  client_id?: string;
  via: 'api' | 'cli';
  action: string;
  target: { type: string; id?: string };
  outcome: string;
  status: number;
  error?: string;
  reason?: string;
  before?: any;
  after?: any;
};

before(async () => {
  f = await startControlFixture((config) => {
    config.upstreams.push({
      id: 'fieldsy',
      url: 'http://127.0.0.1:9/mcp',
      credential: {
        type: 'fields',
        fields: [
          { name: 'api_key', label: 'API key', secret: true },
          { name: 'workspace', label: 'Workspace', secret: false },
        ],
        inject: { header: 'authorization', value: 'Bearer {api_key}' },
      },
    });
  });
  base = f.registry.url;
  carolToken = (await signInAdmin(base, CAROL)).tokens.access_token;
  aliceToken = (await signIn(base, ALICE)).tokens.access_token;
  secrets.push(f.apiKey, carolToken, aliceToken);
  admin = apiClient(base, carolToken);
  alice = apiClient(base, aliceToken);
});
after(() => f?.close());

/** Admin changes that match `query`, newest first, from GET /api/v1/audit. */
async function changes(query = ''): Promise<Change[]> {
  const res = await admin.get(`/audit?kind=admin&limit=1000${query ? `&${query}` : ''}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries as Change[];
}

/** The one record of `action` on `target` (type:id). */
async function change(action: string, target: string): Promise<Change> {
  const found = await changes(`action=${encodeURIComponent(action)}&target=${encodeURIComponent(target)}`);
  assert.equal(found.length, 1, `one ${action} of ${target}: ${JSON.stringify(found)}`);
  return found[0]!;
}

/** The day files, byte for byte (read after an API query, which appends what was recorded). */
function auditFiles(): string {
  const dir = join(f.registry.dataDir, 'audit');
  return readdirSync(dir)
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'))
    .join('');
}

async function exportJsonl(token: string, query: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/audit?format=jsonl&${query}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
  return res.text();
}

/** Who and when: carol, through the API, between `since` and now. */
function madeByCarolViaApi(c: Change, since: string): void {
  assert.deepEqual({ subject: c.subject, provider: c.provider, via: c.via, outcome: c.outcome }, { subject: 'carol', provider: 'registry', via: 'api', outcome: 'ok' });
  assert.equal(typeof c.client_id, 'string', 'the OAuth client the admin used');
  assert.match(c.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.ok(c.time >= since && c.time <= new Date().toISOString(), `when: ${c.time} during the test`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `keygate-registry admin …args`, the real bin in a child process, as carol. */
function cli(args: string[], stdin = ''): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYGATE_REGISTRY: base, KEYGATE_TOKEN: carolToken };
  const child = spawn(process.execPath, [BIN, 'admin', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
const ok = (run: Run) => assert.equal(run.code, 0, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);

describe('each admin change is recorded: who, what, the target before and after', () => {
  test('upstreams: created, changed, disabled with a reason, enabled and deleted', async () => {
    const since = new Date().toISOString();
    assert.equal((await admin.post('/admin/upstreams', { id: 'extra', name: 'Extra', url: f.upstream.url, credential: { type: 'bearer' } })).status, 201);
    assert.equal((await admin.put('/admin/upstreams/extra', { name: 'Extra, renamed', url: f.upstream.url, credential: { type: 'bearer' } })).status, 200);
    assert.equal((await admin.post('/admin/upstreams/extra/disable', { reason: 'rotating its key' })).status, 200);
    assert.equal((await admin.post('/admin/upstreams/extra/enable', {})).status, 200);
    assert.equal((await admin.delete('/admin/upstreams/extra')).status, 204);

    const created = await change('upstream.create', 'upstream:extra');
    madeByCarolViaApi(created, since);
    assert.deepEqual([created.status, created.before, created.after.id, created.after.name, created.after.url], [201, null, 'extra', 'Extra', f.upstream.url]);
    const updated = await change('upstream.update', 'upstream:extra');
    assert.deepEqual([updated.before.name, updated.after.name], ['Extra', 'Extra, renamed']);
    const disabled = await change('upstream.disable', 'upstream:extra');
    assert.equal(disabled.reason, 'rotating its key');
    assert.deepEqual([disabled.before.disabled, disabled.after.disabled, disabled.after.switch.by, disabled.after.switch.reason], [false, true, 'carol', 'rotating its key']);
    const enabled = await change('upstream.enable', 'upstream:extra');
    assert.deepEqual([enabled.before.disabled, enabled.after.disabled, 'reason' in enabled], [true, false, false]);
    const deleted = await change('upstream.delete', 'upstream:extra');
    assert.deepEqual([deleted.status, deleted.before.name, deleted.after], [204, 'Extra, renamed', null]);
    // Newest first, in the order they were made.
    assert.deepEqual((await changes('target=upstream:extra')).map((c) => c.action), ['upstream.delete', 'upstream.enable', 'upstream.disable', 'upstream.update', 'upstream.create']);
  });

  test('gateways: created, an assignment added, disabled, enabled and deleted', async () => {
    const since = new Date().toISOString();
    const eng = { id: 'eng', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] };
    assert.equal((await admin.post('/admin/gateways', eng)).status, 201);
    const wider = { ...eng, servers: [...eng.servers, { upstream: 'demo', name: 'again', identity: 'shared', shared_identity: 'svc' }] };
    assert.equal((await admin.put('/admin/gateways/eng', wider)).status, 200);
    assert.equal((await admin.post('/admin/gateways/eng/disable', { reason: 'incident 42' })).status, 200);
    assert.equal((await admin.post('/admin/gateways/eng/enable')).status, 200);
    assert.equal((await admin.delete('/admin/gateways/eng')).status, 204);

    madeByCarolViaApi(await change('gateway.create', 'gateway:eng'), since);
    const updated = await change('gateway.update', 'gateway:eng');
    assert.deepEqual(updated.before.servers.map((s: { name: string }) => s.name), ['demo']);
    assert.deepEqual(updated.after.servers.map((s: { name: string }) => s.name), ['demo', 'again']);
    const disabled = await change('gateway.disable', 'gateway:eng');
    assert.deepEqual([disabled.reason, disabled.after.disabled, disabled.after.switch.reason], ['incident 42', true, 'incident 42']);
    assert.equal((await change('gateway.enable', 'gateway:eng')).after.disabled, false);
    const deleted = await change('gateway.delete', 'gateway:eng');
    assert.deepEqual([deleted.before.servers.length, deleted.after], [2, null]);
  });

  test("identities: a service account created, rotated, disabled, enabled, deleted; a person's identity disabled; never a credential value", async () => {
    const since = new Date().toISOString();
    const created = await admin.post('/admin/identities', { id: 'ops-bot', upstream: 'demo', label: 'Ops bot', token: SVC_TOKEN });
    assert.equal(created.status, 201);
    assert.equal((await admin.put('/admin/identities/ops-bot', { token: ROTATED_TOKEN, label: 'Ops bot (rotated)' })).status, 200);
    assert.equal((await admin.post('/admin/identities/ops-bot/disable', { reason: 'leaked' })).status, 200);
    assert.equal((await admin.post('/admin/identities/ops-bot/enable')).status, 200);
    assert.equal((await admin.delete('/admin/identities/ops-bot')).status, 204);
    const fields = await admin.post('/admin/identities', { id: 'fields-bot', upstream: 'fieldsy', values: { api_key: FIELD_SECRET, workspace: 'acme' } });
    assert.equal(fields.status, 201);
    // Alice's own identity, which an admin may disable but never see into.
    const own = await alice.post('/me/identities', { upstream: 'demo', label: 'mine', token: ALICE_SECRET });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal((await admin.post(`/admin/identities/${own.body.id}/disable`, { reason: 'audit' })).status, 200);

    const made = await change('identity.create', 'identity:ops-bot');
    madeByCarolViaApi(made, since);
    assert.deepEqual([made.before, made.after.owner, made.after.kind, made.after.label], [null, 'organization', 'bearer', 'Ops bot']);
    const rotated = await change('identity.update', 'identity:ops-bot');
    assert.deepEqual([rotated.before.label, rotated.after.label], ['Ops bot', 'Ops bot (rotated)']);
    assert.ok(rotated.after.updated_at >= rotated.before.updated_at);
    assert.deepEqual([(await change('identity.disable', 'identity:ops-bot')).after.disabled, (await change('identity.enable', 'identity:ops-bot')).after.disabled], [true, false]);
    assert.equal((await change('identity.delete', 'identity:ops-bot')).after, null);
    const fieldsMade = await change('identity.create', 'identity:fields-bot');
    assert.deepEqual([fieldsMade.after.fields_set, fieldsMade.after.public_values], [['api_key', 'workspace'], { workspace: 'acme' }], 'the names of the fields set, and the non-secret value');
    const person = await change('identity.disable', `identity:${own.body.id}`);
    assert.deepEqual([person.before.owner, person.before.availability, person.after.disabled], ['alice', 'private', true]);
    const recorded = JSON.stringify(await changes('target=identity'));
    for (const secret of [SVC_TOKEN, ROTATED_TOKEN, FIELD_SECRET, ALICE_SECRET]) assert.ok(!recorded.includes(secret), 'no credential value in the records');
  });

  test('users: deactivated with a reason and reactivated', async () => {
    const since = new Date().toISOString();
    assert.equal((await admin.post('/admin/users/bob/disable', { reason: 'left the company' })).status, 200);
    assert.equal((await admin.post('/admin/users/bob/enable')).status, 200);
    const off = await change('user.deactivate', 'user:bob');
    madeByCarolViaApi(off, since);
    assert.deepEqual([off.reason, off.before.disabled, off.after.disabled, off.after.switch.reason, off.after.username], ['left the company', false, true, 'left the company', 'bob']);
    const on = await change('user.reactivate', 'user:bob');
    assert.deepEqual([on.before.disabled, on.after.disabled], [true, false]);
  });

  test('clients: created (its secret shown once), changed, a new secret, disabled, enabled, deleted; never the secret or its hash', async () => {
    const since = new Date().toISOString();
    const created = await admin.post('/admin/clients', { client_id: 'ci-audit', name: 'CI', grant_types: ['client_credentials'], scopes: ['mcp:read'] });
    assert.equal(created.status, 201);
    assert.equal(typeof created.body.client_secret, 'string');
    secrets.push(created.body.client_secret);
    assert.equal((await admin.call('PATCH', '/admin/clients/ci-audit', { name: 'CI bot' })).status, 200);
    const renewed = await admin.post('/admin/clients/ci-audit/secret', {});
    assert.equal(renewed.status, 200);
    secrets.push(renewed.body.client_secret);
    assert.equal((await admin.post('/admin/clients/ci-audit/disable', { reason: 'secret in CI logs' })).status, 200);
    assert.equal((await admin.post('/admin/clients/ci-audit/enable')).status, 200);
    assert.equal((await admin.delete('/admin/clients/ci-audit')).status, 204);
    // A client whose id the registry chose: the record names it from the answer.
    const generated = await admin.post('/admin/clients', { name: 'Generated', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:5000/cb'] });
    assert.equal(generated.status, 201);

    const made = await change('client.create', 'client:ci-audit');
    madeByCarolViaApi(made, since);
    assert.deepEqual([made.before, made.after.client_id, made.after.type, made.after.name], [null, 'ci-audit', 'confidential', 'CI']);
    assert.ok(!('client_secret' in made.after), 'the answer held the secret; the record does not');
    const patched = await change('client.update', 'client:ci-audit');
    assert.deepEqual([patched.before.name, patched.after.name], ['CI', 'CI bot']);
    const rotated = await change('client.rotate_secret', 'client:ci-audit');
    assert.ok(rotated.after.updated_at >= rotated.before.updated_at);
    assert.equal((await change('client.disable', 'client:ci-audit')).after.switch.reason, 'secret in CI logs');
    assert.equal((await change('client.enable', 'client:ci-audit')).after.disabled, false);
    assert.equal((await change('client.delete', 'client:ci-audit')).after, null);
    assert.equal((await change('client.create', `client:${generated.body.client_id}`)).after.name, 'Generated');
    const recorded = JSON.stringify(await changes('target=client'));
    const hash = (s: string) => createHash('sha256').update(s).digest('base64url');
    for (const secret of [created.body.client_secret, renewed.body.client_secret]) {
      assert.ok(!recorded.includes(secret) && !recorded.includes(hash(secret)), 'neither the secret nor the hash kept of it');
    }
  });

  test("connections: one person's use of a gateway disabled and enabled", async () => {
    const since = new Date().toISOString();
    assert.equal((await callEcho(`${base}/mcp/team/demo`, aliceToken)).status, 200);
    const listed = await admin.get('/admin/connections?user=alice&gateway=team');
    const id = listed.body.connections[0].id as string;
    assert.equal((await admin.post(`/admin/connections/${id}/disable`, { reason: 'lost laptop' })).status, 200);
    assert.equal((await admin.post(`/admin/connections/${id}/enable`)).status, 200);
    const off = await change('connection.disable', `connection:${id}`);
    madeByCarolViaApi(off, since);
    assert.deepEqual([off.reason, off.before.subject, off.before.gateway, off.before.disabled, off.after.disabled], ['lost laptop', 'alice', 'team', false, true]);
    assert.equal((await change('connection.enable', `connection:${id}`)).after.disabled, false);
  });
});

describe('through the CLI', () => {
  test('changes made with keygate-registry admin are recorded via cli, and audit list and export show them', async () => {
    assert.equal((await callEcho(`${base}/mcp/team/demo`, carolToken)).status, 200, 'an MCP call of hers too');
    ok(await cli(['gateways', 'create', '--file', '-'], JSON.stringify({ id: 'cli-gw', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] })));
    ok(await cli(['gateways', 'assign', 'cli-gw', '--file', '-'], 'upstream: demo\nname: second\nidentity: shared\nshared_identity: svc\n'));
    const created = await cli(['clients', 'create', '--json', '--file', '-'], JSON.stringify({ client_id: 'cli-client', name: 'From the CLI', grant_types: ['client_credentials'] }));
    ok(created);
    const secret = JSON.parse(created.stdout).client_secret as string;
    secrets.push(secret);
    ok(await cli(['clients', 'disable', 'cli-client', '--reason', 'trying the CLI']));

    const made = await change('gateway.create', 'gateway:cli-gw');
    assert.deepEqual([made.subject, made.via, made.outcome, made.after.id], ['carol', 'cli', 'ok', 'cli-gw']);
    const assigned = await change('gateway.update', 'gateway:cli-gw');
    assert.deepEqual([assigned.via, assigned.before.servers.length, assigned.after.servers.length], ['cli', 1, 2]);
    const disabled = await change('client.disable', 'client:cli-client');
    assert.deepEqual([disabled.via, disabled.reason, disabled.after.disabled], ['cli', 'trying the CLI', true]);

    const list = await cli(['audit', 'list', '--kind', 'admin', '--user', 'carol']);
    ok(list);
    assert.match(list.stdout, /^TIME +SUBJECT +VIA +ACTION +TARGET +OUTCOME +STATUS$/m);
    assert.match(list.stdout, /^\S+Z +carol +cli +client\.disable +client:cli-client +ok +200$/m);
    assert.match(list.stdout, /^\S+Z +carol +cli +gateway\.create +gateway:cli-gw +ok +201$/m);
    assert.match(list.stdout, /^\S+Z +carol +api +user\.deactivate +user:bob +ok +200$/m);
    const exported = await cli(['audit', 'export', '--kind', 'admin', '--target', 'gateway:cli-gw']);
    ok(exported);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Change);
    assert.deepEqual(lines.map((l) => l.action), ['gateway.create', 'gateway.update'], 'oldest first, only that target');
    const both = await cli(['audit', 'list', '--user', 'carol', '--limit', '1000']);
    ok(both);
    assert.match(both.stdout, /^TIME +SUBJECT +KIND +WHAT +OUTCOME +STATUS$/m, 'both kinds in one list');
    assert.match(both.stdout, /^\S+Z +carol +admin +client\.disable client:cli-client via cli +ok +200$/m);
    for (const out of [list.stdout, exported.stdout, both.stdout]) assert.ok(!out.includes(secret), 'the secret only in the answer that made it');
  });
});

describe('refused and anonymous attempts', () => {
  test('a signed-in caller without the capability is refused, the attempt recorded as denied, and nothing changes', async () => {
    const attempts: [string, string, unknown, string, string | undefined][] = [
      ['POST', '/admin/gateways', { id: 'sneaky', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }, 'gateway.create', undefined],
      ['POST', '/admin/users/bob/disable', { reason: 'because' }, 'user.deactivate', 'bob'],
      ['POST', '/admin/identities/svc/disable', {}, 'identity.disable', 'svc'],
      ['DELETE', '/admin/clients/keygate-vscode', undefined, 'client.delete', 'keygate-vscode'],
    ];
    for (const [method, path, body, action, id] of attempts) {
      const res = await alice.call(method, path, body);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.body.error, 'insufficient_scope');
    }
    const denied = await changes('user=alice');
    assert.equal(denied.length, attempts.length);
    for (const [method, path, , action, id] of attempts) {
      const c = denied.find((d) => d.action === action);
      assert.ok(c, `${method} ${path} recorded`);
      assert.deepEqual(
        { subject: c.subject, outcome: c.outcome, status: c.status, error: c.error, target: c.target, before: 'before' in c, after: 'after' in c, reason: 'reason' in c },
        { subject: 'alice', outcome: 'denied', status: 403, error: 'insufficient_scope', target: { type: action.split('.')[0], ...(id && { id }) }, before: false, after: false, reason: false },
      );
    }
    assert.deepEqual(await changes('user=alice&outcome=ok'), [], 'none recorded as a success');
    assert.equal((await changes('outcome=denied')).length, attempts.length);
    // Nothing changed.
    assert.equal((await admin.get('/admin/gateways/sneaky')).status, 404);
    assert.equal((await admin.get('/admin/users/bob')).body.disabled, false);
    assert.equal((await admin.get('/admin/identities/svc')).body.disabled, false);
  });

  test("an admin's change the API refuses is recorded as failed, without before or after", async () => {
    const conflict = await admin.put('/admin/gateways/team', { servers: [] });
    assert.equal(conflict.status, 409);
    const invalid = await admin.post('/admin/upstreams', { id: 'bad', url: 'not a url' });
    assert.equal(invalid.status, 400);
    const missing = await admin.post('/admin/users/nobody/disable', {});
    assert.equal(missing.status, 404);
    const failed = await changes('user=carol&outcome=failed');
    const summary = failed.map((c) => [c.action, c.target, c.status, c.error, 'before' in c || 'after' in c]);
    assert.deepEqual(summary, [
      ['user.deactivate', { type: 'user', id: 'nobody' }, 404, 'not_found', false],
      ['upstream.create', { type: 'upstream' }, 400, 'invalid_request', false],
      ['gateway.update', { type: 'gateway', id: 'team' }, 409, 'conflict', false],
    ]);
    assert.equal((await changes('user=carol&outcome=error')).length, failed.length, 'error: every outcome but ok');
  });

  test('anonymous attempts and reads are not recorded', async () => {
    const count = (await changes()).length;
    const anonymous = apiClient(base, undefined);
    assert.equal((await anonymous.post('/admin/gateways', { id: 'anon', servers: [] })).status, 401);
    assert.equal((await apiClient(base, 'not-a-token').post('/admin/users/bob/disable', {})).status, 401);
    assert.equal((await admin.get('/admin/gateways')).status, 200);
    assert.equal((await admin.get('/admin/users/bob')).status, 200);
    assert.equal((await changes()).length, count);
  });
});

describe('queried and exported like MCP calls', () => {
  test('kind, action, target, user and outcome select admin changes; kind=mcp leaves them out; a malformed filter is 400', async () => {
    const all = (await admin.get('/audit?limit=1000')).body.entries as { kind?: string }[];
    assert.ok(all.some((e) => e.kind === 'admin') && all.some((e) => e.kind === undefined), 'both kinds by default');
    const mcp = (await admin.get('/audit?kind=mcp&limit=1000')).body.entries as { kind?: string; gateway: string }[];
    assert.ok(mcp.length > 0 && mcp.every((e) => e.kind === undefined && typeof e.gateway === 'string'));
    assert.equal(mcp.length + (await changes()).length, all.length);
    assert.ok((await changes('target=gateway')).every((c) => c.target.type === 'gateway'));
    assert.ok((await changes('action=client.create')).every((c) => c.action === 'client.create'));
    assert.deepEqual(await admin.get('/audit?gateway=team&kind=admin').then((r) => r.body.entries), [], 'admin changes belong to no gateway');
    for (const [query, message] of [
      ['kind=everything', /^query: kind: expected kind: mcp or admin$/],
      ['target=widget:1', /^query: target: expected a target: upstream, gateway/],
      ['action=DROP TABLE', /^query: action: expected an action like gateway\.update$/],
    ] as const) {
      const res = await admin.get(`/audit?${query.replace(' ', '%20')}`);
      assert.equal(res.status, 400, query);
      assert.deepEqual([res.body.error, message.test(res.body.error_description)], ['invalid_request', true], res.body.error_description);
    }
  });

  test("a person's own audit (/me/audit) holds their MCP calls, not their admin changes", async () => {
    assert.equal((await callEcho(`${base}/mcp/team/demo`, carolToken)).status, 200);
    assert.ok((await changes('user=carol')).length > 0);
    const own = (await admin.get('/me/audit?limit=1000')).body.entries as { kind?: string; gateway?: string }[];
    assert.ok(own.length > 0 && own.every((e) => e.kind === undefined && typeof e.gateway === 'string'));
    const exported = await fetch(`${base}/api/v1/me/audit?format=jsonl`, { headers: { authorization: `Bearer ${carolToken}` } }).then((r) => r.text());
    assert.ok(!exported.includes('"kind":"admin"'));
    assert.equal((await admin.get('/me/audit?kind=admin')).status, 400, 'no kind to ask for there');
  });

  test('the JSONL export holds every admin change, oldest first, as the file holds them', async () => {
    const lines = (await exportJsonl(carolToken, 'kind=admin'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Change);
    const listed = await changes();
    assert.deepEqual(
      lines.map((l) => `${l.time} ${l.action}`),
      listed.map((l) => `${l.time} ${l.action}`).reverse(),
    );
    const file = auditFiles()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind?: string })
      .filter((e) => e.kind === 'admin');
    assert.deepEqual(lines, file);
  });
});

describe('no secret in the audit', () => {
  test('no secret value is in the audit files, the JSON answers or the export; nor any secret the store keeps', async () => {
    const answers = JSON.stringify((await admin.get('/audit?limit=1000')).body) + (await exportJsonl(carolToken, ''));
    const files = auditFiles();
    assert.match(files, /"kind":"admin"/);
    // What the store keeps in place of secrets: ciphertexts of identities, hashes of client secrets.
    const { collections } = JSON.parse(readFileSync(join(f.registry.dataDir, 'store.json'), 'utf8')) as { collections: Record<string, Record<string, { payload: Record<string, unknown> }>> };
    const kept: string[] = [];
    const strings = (value: unknown): string[] => (typeof value === 'string' ? [value] : value && typeof value === 'object' ? Object.values(value).flatMap(strings) : []);
    for (const { payload } of Object.values(collections.identities ?? {})) kept.push(...strings(payload.secret).filter((s) => s.length >= 16));
    for (const { payload } of Object.values(collections.clients ?? {})) kept.push(...strings(payload.client_secret_hash));
    assert.ok(kept.length >= 3, `the store's secrets were found (${kept.length})`);
    for (const secret of [...secrets, ...kept]) {
      assert.ok(!files.includes(secret), `a secret (${secret.slice(0, 4)}…) is in the audit files`);
      assert.ok(!answers.includes(secret), `a secret (${secret.slice(0, 4)}…) is in an audit answer`);
    }
  });
});
