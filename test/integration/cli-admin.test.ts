import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAROL, callEcho, startControlFixture } from '../helpers/control.ts';
import { ALICE, type Fixture } from '../helpers/fixture.ts';
import { signIn, signInAdmin } from '../helpers/oauth.ts';
import { BIN } from '../helpers/spawn.ts';
import { runAdmin } from '../../server/cli/admin.ts';

// `keygate-registry admin …`, run as an admin runs it: the real bin in a child
// process against a real registry over HTTP, the token in KEYGATE_TOKEN.

let f: Fixture;
let base: string;
let carol: string;
let alice: string;
/** A port nothing listens on. */
let dead: string;
const dir = mkdtempSync(join(tmpdir(), 'keygate-cli-admin-'));
const SVC_TOKEN = 'service-account-token-9f8e7d6c5b4a';
const ROTATED = 'service-account-token-rotated-1234';

before(async () => {
  f = await startControlFixture();
  base = f.registry.url;
  carol = (await signInAdmin(base, CAROL)).tokens.access_token;
  alice = (await signIn(base, ALICE)).tokens.access_token;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  dead = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});
after(async () => {
  await f?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `keygate-registry admin …args`; the registry comes from KEYGATE_REGISTRY unless `env` says otherwise. */
function admin(args: string[], options: { token?: string | null; stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const token = options.token === undefined ? carol : options.token;
  // No credentials of `keygate-registry login` (cli-login.test.ts tests those): only KEYGATE_TOKEN.
  const env: NodeJS.ProcessEnv = { ...process.env, KEYGATE_REGISTRY: base, KEYGATE_CREDENTIALS: join(dir, 'no-credentials.json'), ...options.env };
  delete env.KEYGATE_TOKEN;
  if (token !== null) env.KEYGATE_TOKEN = token;
  const child = spawn(process.execPath, [BIN, 'admin', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** runAdmin with the same environment, without a process (for tables of misuse). */
async function inProcess(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runAdmin(args, { env: { KEYGATE_REGISTRY: base, KEYGATE_TOKEN: carol }, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stdin: () => '' });
  return { code, stdout, stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const ok = (run: Run, what = '') => assert.equal(run.code, 0, `${what}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
const json = (run: Run) => {
  ok(run);
  return JSON.parse(run.stdout);
};

describe('using it', () => {
  test('--help at every level; misuse exits 2 with what was wrong and where to look', async () => {
    const top = await admin(['--help'], { token: null });
    ok(top);
    for (const resource of ['upstreams', 'gateways', 'identities', 'users', 'clients', 'connections', 'audit']) assert.match(top.stdout, new RegExp(`^  ${resource} `, 'm'));
    assert.match(top.stdout, /KEYGATE_TOKEN/);
    const clients = await admin(['clients', '--help'], { token: null });
    ok(clients);
    assert.match(clients.stdout, /keygate-registry admin clients secret ID/);
    const create = await admin(['clients', 'create', '-h'], { token: null });
    ok(create);
    assert.match(create.stdout, /^Usage: keygate-registry admin clients create --file PATH/);
    assert.match(create.stdout, /"-" reads standard input/);
    const audit = await inProcess(['audit', 'list', '--help']);
    assert.match(audit.stdout, /--since TIME/);
    const unknown = await admin(['widgets', 'list']);
    assert.equal(unknown.code, 2, 'the bin exits 2 on misuse');
    assert.match(unknown.stderr, /unknown resource "widgets"/);

    const cases: [string[], RegExp][] = [
      [[], /which resource\?/],
      [['widgets', 'list'], /unknown resource "widgets"/],
      [['clients'], /which action on clients\?/],
      [['clients', 'explode'], /unknown action "explode" for clients/],
      [['clients', 'get'], /clients get takes ID/],
      [['clients', 'get', 'a', 'b'], /clients get takes ID, not "b"/],
      [['clients', 'get', 'a', '--reason', 'x'], /clients get does not take --reason/],
      [['users', 'list', '--colour', 'red'], /Unknown option '--colour'/],
      [['clients', 'create'], /this command needs --file PATH/],
      [['clients', 'create', '--file', join(dir, 'missing.yaml')], /cannot read .*missing\.yaml: ENOENT/],
      [['clients', 'create', '--file', file('list.yaml', '- a\n- b\n')], /must hold one object \(a mapping\), not a list/],
      [['clients', 'create', '--file', file('bad.yaml', 'name: [unclosed\n')], /is not valid YAML or JSON/],
      [['users', 'list', '--registry', 'ftp://x'], /--registry must be an http\(s\) URL/],
    ];
    // The same code in this process (a spawn per case costs seconds); the bin's own exit code is checked above and below.
    for (const [args, message] of cases) {
      const run = await inProcess(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.equal(run.stdout, '');
    }
  });

  test('the token comes from KEYGATE_TOKEN only: --token is refused, a missing one is named', async () => {
    const argv = await admin(['users', 'list', '--token', carol]);
    assert.equal(argv.code, 2);
    assert.match(argv.stderr, /read from the environment variable KEYGATE_TOKEN only, never from the command line/);
    assert.ok(!argv.stderr.includes(carol));
    const missing = await admin(['users', 'list'], { token: null });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /set KEYGATE_TOKEN to an access token of the registry with the scope mcp:admin/);
  });

  test("the registry's refusals are printed as status, error and description, with exit code 1", async () => {
    const cases: [string[], string | null, RegExp][] = [
      [['users', 'list'], alice, /^keygate-registry admin: 403 insufficient_scope: this API needs the .*scope mcp:admin\n$/],
      [['users', 'list'], 'not-a-token', /^keygate-registry admin: 401 invalid_token: /],
      [['clients', 'get', 'ghost'], carol, /^keygate-registry admin: 404 not_found: there is no client "ghost"\n$/],
      [['upstreams', 'delete', 'demo'], carol, /^keygate-registry admin: 409 conflict: upstream "demo" is defined in the configuration file/],
      [['audit', 'list', '--since', 'yesterday'], carol, /^keygate-registry admin: 400 invalid_request: query: since: /],
    ];
    for (const [args, token, message] of cases) {
      const run = await admin(args, { token });
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    }
    const bad = await admin(['clients', 'create', '--file', '-'], { stdin: '{"name": "x", "redirect_uris": ["javascript:alert(1)"]}' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /400 invalid_request: redirect_uris\.0: /);
    const down = await admin(['users', 'list', '--registry', dead]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^keygate-registry admin: cannot reach the registry at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\n$/);
  });

  test('--registry wins over KEYGATE_REGISTRY, whose default is http://127.0.0.1:8787', async () => {
    const run = await admin(['users', 'list', '--registry', base], { env: { KEYGATE_REGISTRY: dead } });
    ok(run);
    const help = await admin(['--help'], { token: null });
    assert.match(help.stdout, /default http:\/\/127\.0\.0\.1:8787/);
  });
});

describe('upstreams and gateways', () => {
  test('upstreams: create from YAML, list as a table, get as JSON, update from stdin, disable with a reason, enable, delete', async () => {
    const created = await admin(['upstreams', 'create', '--file', file('up.yaml', `id: extra\nname: Extra\nurl: ${f.upstream.url}\ncredential:\n  type: bearer\n`)]);
    ok(created);
    assert.match(created.stdout, /^id: +extra$/m);
    assert.match(created.stdout, /^source: +api$/m);
    const list = await admin(['upstreams', 'list']);
    ok(list);
    assert.match(list.stdout, /^ID +NAME +URL +CREDENTIAL +SOURCE +DISABLED$/m);
    assert.match(list.stdout, /^extra +Extra +http:\/\/\S+ +bearer +api +no$/m);
    assert.match(list.stdout, /^demo +demo +\S+ +bearer +config +no$/m);
    assert.equal(json(await admin(['upstreams', 'get', 'extra', '--json'])).url, f.upstream.url);
    const updated = await admin(['upstreams', 'update', 'extra', '--file', '-', '--json'], { stdin: JSON.stringify({ name: 'Extra v2', url: f.upstream.url, credential: { type: 'bearer' } }) });
    assert.equal(json(updated).name, 'Extra v2');
    const off = json(await admin(['upstreams', 'disable', 'extra', '--reason', 'incident 42', '--json']));
    assert.deepEqual([off.disabled, off.switch.reason, off.switch.by], [true, 'incident 42', 'carol']);
    assert.equal(json(await admin(['upstreams', 'enable', 'extra', '--json'])).disabled, false);
    const deleted = await admin(['upstreams', 'delete', 'extra']);
    ok(deleted);
    assert.equal(deleted.stdout, 'deleted upstream "extra"\n');
    assert.equal((await admin(['upstreams', 'get', 'extra'])).code, 1);
  });

  test('gateways: create, assignments, assign from a file, unassign, disable/enable, delete', async () => {
    ok(await admin(['gateways', 'create', '--file', file('gw.yaml', 'id: ops\nname: Operations\nvisibility: private\nservers:\n  - upstream: demo\n    identity: shared\n    shared_identity: svc\n')]));
    const assignments = await admin(['gateways', 'assignments', 'ops']);
    ok(assignments);
    assert.match(assignments.stdout, /^NAME +UPSTREAM +IDENTITY +SHARED_IDENTITY +STORAGE +MCP_URL$/m);
    assert.match(assignments.stdout, new RegExp(`^demo +demo +shared +svc +registry +${base}/mcp/ops/demo$`, 'm'));
    const assigned = await admin(['gateways', 'assign', 'ops', '--file', file('server.yaml', 'upstream: demo\nname: readonly\nidentity: shared\nshared_identity: svc\ntools:\n  allow: [echo]\n')]);
    ok(assigned);
    assert.match(assigned.stdout, /^readonly +demo +shared +svc/m);
    // The new assignment is live: a call through it reaches the upstream.
    assert.equal((await callEcho(`${base}/mcp/ops/readonly`, alice)).status, 200);
    const got = json(await admin(['gateways', 'get', 'ops', '--json']));
    assert.deepEqual(got.servers.map((s: { name: string }) => s.name), ['demo', 'readonly']);
    assert.deepEqual(got.servers[1].tools, { allow: ['echo'], deny: [] });
    const list = await admin(['gateways', 'list']);
    assert.match(list.stdout, /^ops +Operations +private +demo, readonly +api +no$/m);
    const missing = await admin(['gateways', 'unassign', 'ops', 'nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /gateway "ops" has no assignment named "nope" \(it has: demo, readonly\)/);
    const unassigned = await admin(['gateways', 'unassign', 'ops', 'readonly', '--json']);
    assert.deepEqual(json(unassigned).servers.map((s: { name: string }) => s.name), ['demo']);
    const dangling = await admin(['gateways', 'assign', 'ops', '--file', '-'], { stdin: 'upstream: ghost\nidentity: shared\n' });
    assert.equal(dangling.code, 1);
    assert.match(dangling.stderr, /400 invalid_request: .*no upstream with id "ghost"/);
    assert.equal(json(await admin(['gateways', 'disable', 'ops', '--json'])).disabled, true);
    assert.equal((await callEcho(`${base}/mcp/ops/demo`, alice)).reason, 'gateway_disabled');
    ok(await admin(['gateways', 'enable', 'ops']));
    ok(await admin(['gateways', 'delete', 'ops']));
    const fromFile = await admin(['gateways', 'assign', 'team', '--file', file('s2.yaml', 'upstream: demo\nname: two\nidentity: shared\nshared_identity: svc\n')]);
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /409 conflict: gateway "team" is defined in the configuration file/);
  });
});

describe('identities, users, clients, connections and audit', () => {
  test('identities: a service account created, listed by upstream, rotated, disabled and deleted; its secret never printed', async () => {
    const created = json(await admin(['identities', 'create', '--json', '--file', file('id.json', JSON.stringify({ id: 'bot', upstream: 'demo', label: 'Bot', token: SVC_TOKEN }))]));
    assert.deepEqual([created.id, created.owner, created.availability], ['bot', 'organization', 'global']);
    const list = await admin(['identities', 'list', '--upstream', 'demo']);
    assert.match(list.stdout, /^bot +demo +organization +global +bearer +Bot +no$/m);
    assert.match((await admin(['identities', 'list', '--owner', 'nobody'])).stdout, /^\(none\)$/m);
    const rotated = await admin(['identities', 'update', 'bot', '--file', '-'], { stdin: `token: ${ROTATED}\nlabel: Bot v2\n` });
    ok(rotated);
    assert.match(rotated.stdout, /^label: +Bot v2$/m);
    assert.equal(json(await admin(['identities', 'disable', 'bot', '--json'])).disabled, true);
    assert.equal(json(await admin(['identities', 'enable', 'bot', '--json'])).disabled, false);
    const got = await admin(['identities', 'get', 'bot']);
    ok(got);
    ok(await admin(['identities', 'delete', 'bot']));
    for (const run of [created, list, rotated, got]) assert.ok(!JSON.stringify(run).includes(SVC_TOKEN) && !JSON.stringify(run).includes(ROTATED));
  });

  test('users: list, get, deactivate with a reason (calls stop), reactivate', async () => {
    const list = await admin(['users', 'list']);
    assert.match(list.stdout, /^SUB +USERNAME +EMAIL +PROVIDER +SCOPES +DISABLED +LAST_LOGIN$/m);
    assert.match(list.stdout, /^alice +alice +alice@example\.com +builtin +mcp:read, mcp:write +no +\d{4}-\d\d-\d\dT[\d:]+Z$/m);
    assert.match((await admin(['users', 'get', 'bob'])).stdout, /^username: +bob$/m);
    const off = await admin(['users', 'deactivate', 'alice', '--reason', 'left the company']);
    ok(off);
    assert.match(off.stdout, /^disabled: +yes$/m);
    assert.match(off.stdout, /"reason":"left the company"/);
    assert.deepEqual(Object.values(await callEcho(`${base}/mcp/team/demo`, alice)).slice(0, 3), [401, undefined, 'user_disabled']);
    assert.equal(json(await admin(['users', 'reactivate', 'alice', '--json'])).disabled, false);
    // Her grants ended with the deactivation: she signs in again.
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice)).status, 401);
    alice = (await signIn(base, ALICE)).tokens.access_token;
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice)).status, 200);
    const self = await admin(['users', 'deactivate', 'carol']);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /409 conflict: you cannot deactivate your own account/);
  });

  test('clients: create from stdin prints the secret once, list and get never do; update, new secret, disable, enable, delete', async () => {
    const created = await admin(['clients', 'create', '--file', '-'], { stdin: 'client_id: ci-runner\nname: CI runner\nredirect_uris: [http://127.0.0.1:43210/callback]\nscopes: [mcp:read]\n' });
    ok(created);
    const secret = /^client_secret: +(\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(secret, created.stdout);
    assert.match(created.stdout, /client_secret is shown this once; only its hash is kept/);
    const list = await admin(['clients', 'list']);
    assert.match(list.stdout, /^CLIENT_ID +NAME +SOURCE +TYPE +GRANT_TYPES +SCOPES +RESOURCE_SERVER +DISABLED$/m);
    assert.match(list.stdout, /^ci-runner +CI runner +admin +confidential +authorization_code, refresh_token +mcp:read +no +no$/m);
    assert.match(list.stdout, /^keygate-vscode +Keygate for VS Code +builtin +public/m);
    const get = await admin(['clients', 'get', 'ci-runner', '--json']);
    const listJson = await admin(['clients', 'list', '--json', '--source', 'admin']);
    assert.deepEqual(json(listJson).clients.map((c: { client_id: string }) => c.client_id), ['ci-runner']);
    for (const run of [list, get, listJson]) assert.ok(!run.stdout.includes(secret!), 'the secret is shown only when made');
    const updated = await admin(['clients', 'update', 'ci-runner', '--file', '-', '--json'], { stdin: '{"name": "CI runner 2", "scopes": ["mcp:read", "mcp:write"], "resource_server": true}' });
    assert.deepEqual([json(updated).name, json(updated).scopes, json(updated).resource_server], ['CI runner 2', ['mcp:read', 'mcp:write'], true]);
    const rotated = await admin(['clients', 'secret', 'ci-runner']);
    ok(rotated);
    const next = /^client_secret: +(\S+)$/m.exec(rotated.stdout)?.[1];
    assert.ok(next && next !== secret);
    assert.match(rotated.stdout, /shown this once/);
    assert.equal(json(await admin(['clients', 'disable', 'ci-runner', '--reason', 'leaked', '--json'])).switch.reason, 'leaked');
    assert.equal(json(await admin(['clients', 'enable', 'ci-runner', '--json'])).disabled, false);
    const readOnly = await admin(['clients', 'delete', 'keygate-vscode']);
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.stderr, /409 conflict: client "keygate-vscode" is built into the registry/);
    ok(await admin(['clients', 'delete', 'ci-runner']));
    assert.equal((await admin(['clients', 'get', 'ci-runner'])).code, 1);
  });

  test('connections: listed by user, shown, disabled (that client stops) and enabled', async () => {
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice)).status, 200);
    const list = json(await admin(['connections', 'list', '--user', 'alice', '--gateway', 'team', '--json']));
    // One connection per client she used (she signed in again after her reactivation): the current token's.
    const clientId = JSON.parse(Buffer.from(alice.split('.')[1]!, 'base64url').toString()).client_id as string;
    const mine = (list.connections as { id: string; client_id: string }[]).filter((c) => c.client_id === clientId);
    assert.equal(mine.length, 1);
    const id = mine[0]!.id;
    const table = await admin(['connections', 'list', '--user', 'alice']);
    assert.match(table.stdout, new RegExp(`^${id} +alice +team +\\S+ +\\d{4}-`, 'm'));
    assert.match((await admin(['connections', 'get', id])).stdout, /^subject: +alice$/m);
    assert.equal(json(await admin(['connections', 'disable', id, '--json'])).disabled, true);
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice)).reason, 'connection_disabled');
    ok(await admin(['connections', 'enable', id]));
    assert.equal((await callEcho(`${base}/mcp/team/demo`, alice)).status, 200);
  });

  test('audit: list filtered as a table or JSON, export as JSON Lines', async () => {
    await (f.registry.registry.audit as { flush?: () => Promise<void> }).flush?.();
    const table = await admin(['audit', 'list', '--user', 'alice', '--gateway', 'team', '--limit', '2']);
    ok(table);
    assert.match(table.stdout, /^TIME +SUBJECT +GATEWAY +SERVER +METHOD +NAME +OUTCOME +STATUS +MS$/m);
    assert.match(table.stdout, /^\S+Z +alice +team +demo +tools\/call +echo +ok +200 +[\d.]+$/m);
    const asJson = json(await admin(['audit', 'list', '--user', 'alice', '--outcome', 'connection_disabled', '--json']));
    assert.ok(asJson.entries.length >= 1 && asJson.entries.every((e: { outcome: string }) => e.outcome === 'connection_disabled'));
    const exported = await admin(['audit', 'export', '--user', 'alice']);
    ok(exported);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; time: string });
    assert.ok(lines.length >= 3 && lines.every((l) => l.subject === 'alice'));
    assert.ok(lines[0]!.time <= lines.at(-1)!.time, 'oldest first');
  });
});
