import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import type { Kind } from '../../server/store/index.ts';
import type { AuditLog } from '../../server/audit/audit.ts';
import { apiClient, callEcho } from '../helpers/control.ts';
import { signIn, signInAdmin, type TokenSet } from '../helpers/oauth.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

// The audit log: every MCP request appended to {data dir}/audit/<UTC day>.jsonl
// in batches, never through the store; queried and exported by admins, each
// person sees their own entries; it survives a restart and never holds a secret.

const USERS = {
  alice: { username: 'alice', password: 'alice audit pass phrase' },
  bob: { username: 'bob', password: 'bob audit pass phrase!!' },
  carol: { username: 'carol', password: 'carol audit admin phrase' },
};
const KINDS: Kind[] = ['clients', 'interactions', 'browser_sessions', 'consents', 'accounts', 'authorization_codes', 'refresh_tokens', 'revoked_access_tokens', 'identities', 'selections', 'upstreams', 'gateways', 'switches', 'connections', 'upstream_clients', 'upstream_authorizations'];

type Entry = { time: string; request_id: string; subject?: string; gateway: string; server?: string; outcome: string; identity?: string; client_id?: string };

let upstream: DemoUpstream;
let apiKey: string;
let dataDir: string;
let r: TestRegistry;
let tokens: Record<'alice' | 'bob' | 'carol', TokenSet>;
let admin: ReturnType<typeof apiClient>;
let burstIds: string[] = [];

const config = () => ({
  oauth_server: {
    builtin: {
      users: [
        { username: 'alice', password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] },
        { username: 'bob', password_env: 'BOB_PASSWORD', scopes: ['mcp:read', 'mcp:write'] },
        { username: 'carol', password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] },
      ],
    },
  },
  upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
  identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
  gateways: [
    { id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
    { id: 'open', visibility: 'public', servers: [{ upstream: 'demo', name: 'tools', identity: 'shared', shared_identity: 'svc' }] },
  ],
});
const env = () => ({ ALICE_PASSWORD: USERS.alice.password, BOB_PASSWORD: USERS.bob.password, CAROL_PASSWORD: USERS.carol.password, DEMO_KEY: apiKey });

async function signInAll(base: string) {
  return { alice: (await signIn(base, USERS.alice)).tokens, bob: (await signIn(base, USERS.bob)).tokens, carol: (await signInAdmin(base, USERS.carol)).tokens };
}

function auditFiles(): string[] {
  return readdirSync(join(dataDir, 'audit')).sort();
}
/** The day files' lines, once everything recorded so far is appended. */
async function rawLines(): Promise<string[]> {
  await (r.registry.audit as AuditLog).flush();
  return auditFiles().flatMap((name) => readFileSync(join(dataDir, 'audit', name), 'utf8').split('\n').filter(Boolean));
}

before(async () => {
  apiKey = `demo-${randomBytes(16).toString('hex')}`;
  upstream = await startDemoUpstream({ apiKey });
  dataDir = mkdtempSync(join(tmpdir(), 'keygate-audit-'));
  r = await startRegistry(config(), env(), { dataDir });
  tokens = await signInAll(r.url);
  admin = apiClient(r.url, tokens.carol.access_token);
});
after(async () => {
  await r.close();
  await upstream.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('recording', () => {
  test('each MCP request is appended to the JSONL file of its UTC day, after the response', async () => {
    assert.equal((await callEcho(`${r.url}/mcp/team/demo`, tokens.alice.access_token)).status, 200);
    assert.equal((await callEcho(`${r.url}/mcp/team/nope`, tokens.alice.access_token)).status, 404);
    assert.equal((await callEcho(`${r.url}/mcp/open/tools`, tokens.bob.access_token)).status, 200);
    assert.equal((await callEcho(`${r.url}/mcp/open/tools`, undefined)).status, 200);
    const lines = (await rawLines()).map((l) => JSON.parse(l) as Entry);
    // One file per UTC day of the entries (one file, unless the test straddles midnight UTC).
    assert.deepEqual(auditFiles(), [...new Set(lines.map((e) => `${e.time.slice(0, 10)}.jsonl`))]);
    assert.ok(lines.every((e) => e.time.endsWith('Z')), 'times are UTC');
    assert.deepEqual(
      lines.map((e) => [e.subject ?? null, e.gateway, e.server, e.outcome]),
      [
        ['alice', 'team', 'demo', 'ok'],
        ['alice', 'team', 'nope', 'unknown_server'],
        ['bob', 'open', 'tools', 'ok'],
        [null, 'open', 'tools', 'ok'],
      ],
    );
    assert.equal(lines[0]!.identity, 'svc');
  });

  test('a burst of MCP calls writes nothing to the store; a new connection is one batched write, after the fact', async () => {
    // Alice's connection to team is known (and flushed) from the test above.
    await admin.get('/admin/connections');
    const writes: string[] = [];
    const off = KINDS.map((kind) => r.store.onChange(kind, (id) => writes.push(`${kind}:${id}`)));
    try {
      const before = (await rawLines()).length;
      const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => callEcho(`${r.url}/mcp/team/demo`, tokens.alice.access_token, `c${i}`)));
      for (let i = 0; i < 20; i++) assert.equal((await callEcho(`${r.url}/mcp/team/demo`, tokens.alice.access_token, `s${i}`)).status, 200);
      assert.ok(concurrent.every((c) => c.status === 200), 'every concurrent call answered');
      assert.deepEqual(writes, [], 'no store write during the burst');
      const listed = await admin.get('/admin/connections?user=alice');
      assert.equal(listed.body.connections.length, 1);
      assert.deepEqual(writes, [], 'last_seen of a busy connection is not rewritten per call');
      const lines = await rawLines();
      assert.equal(lines.length - before, 40, 'all 40 calls are in the log');
      burstIds = lines.slice(before).map((l) => (JSON.parse(l) as Entry).request_id);

      // Bob's first call to team: a new connection, recorded in the background.
      assert.equal((await callEcho(`${r.url}/mcp/team/demo`, tokens.bob.access_token)).status, 200);
      assert.deepEqual(writes, [], 'nothing written on the request path');
      await admin.get('/admin/connections');
      assert.equal(writes.length, 1);
      assert.match(writes[0]!, /^connections:bob\nteam\n/);
    } finally {
      for (const o of off) o();
    }
  });
});

describe('queries', () => {
  test('filters by user, gateway, outcome and time; newest first; limit with has_more', async () => {
    const byUser = await admin.get('/audit?user=bob');
    assert.equal(byUser.status, 200);
    assert.ok(byUser.body.entries.length >= 2 && byUser.body.entries.every((e: Entry) => e.subject === 'bob'), 'only bob');
    const open = await admin.get('/audit?gateway=open');
    assert.deepEqual(new Set(open.body.entries.map((e: Entry) => e.gateway)), new Set(['open']));
    assert.equal(open.body.entries.length, 2);
    const failed = await admin.get('/audit?outcome=error');
    assert.deepEqual(failed.body.entries.map((e: Entry) => e.outcome), ['unknown_server']);
    assert.equal((await admin.get('/audit?outcome=unknown_server&user=alice')).body.entries.length, 1);
    assert.equal((await admin.get('/audit?outcome=unknown_server&user=bob')).body.entries.length, 0);

    const all = (await admin.get('/audit?limit=1000')).body.entries as Entry[];
    const times = all.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    const page = await admin.get('/audit?limit=3');
    assert.deepEqual(page.body.entries.map((e: Entry) => e.request_id), all.slice(0, 3).map((e) => e.request_id));
    assert.equal(page.body.has_more, true);
    assert.equal((await admin.get(`/audit?limit=${all.length}`)).body.has_more, false);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual((await admin.get(`/audit?since=${encodeURIComponent(future)}`)).body.entries, []);
    assert.equal((await admin.get(`/audit?until=${Math.floor(Date.now() / 1000) + 60}`)).body.entries.length, Math.min(all.length, 100));
    const middle = all[Math.floor(all.length / 2)]!;
    const since = (await admin.get(`/audit?limit=1000&since=${encodeURIComponent(middle.time)}`)).body.entries as Entry[];
    assert.ok(since.length > 0 && since.length < all.length && since.every((e) => e.time >= middle.time), 'since bounds the entries');
  });

  test('format=jsonl streams every match oldest first as application/x-ndjson', async () => {
    const res = await fetch(`${r.url}/api/v1/audit?format=jsonl&gateway=team`, { headers: { authorization: `Bearer ${tokens.carol.access_token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/x-ndjson/);
    assert.match(res.headers.get('content-disposition')!, /attachment/);
    const text = await res.text();
    assert.ok(text.endsWith('\n'), 'newline-terminated');
    const entries = text.trim().split('\n').map((l) => JSON.parse(l) as Entry);
    assert.ok(entries.length >= 43, `${entries.length} team entries`);
    assert.ok(entries.every((e) => e.gateway === 'team'), 'the filter applies');
    const times = entries.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
    for (const id of burstIds) assert.ok(entries.some((e) => e.request_id === id), `burst entry ${id} exported`);
    const limited = await fetch(`${r.url}/api/v1/audit?format=jsonl&limit=2`, { headers: { authorization: `Bearer ${tokens.carol.access_token}` } });
    assert.equal((await limited.text()).trim().split('\n').length, 2);
  });

  test('a person sees only their own entries at /api/v1/me/audit', async () => {
    const bob = apiClient(r.url, tokens.bob.access_token);
    const own = await bob.get('/me/audit?limit=1000');
    assert.equal(own.status, 200);
    assert.ok(own.body.entries.length >= 2 && own.body.entries.every((e: Entry) => e.subject === 'bob'), 'only bob');
    const exported = await fetch(`${r.url}/api/v1/me/audit?format=jsonl`, { headers: { authorization: `Bearer ${tokens.bob.access_token}` } });
    const lines = (await exported.text()).trim().split('\n').map((l) => JSON.parse(l) as Entry);
    assert.equal(lines.length, own.body.entries.length);
    assert.ok(lines.every((e) => e.subject === 'bob'), 'only bob in the export');
    const other = await bob.get('/me/audit?user=alice');
    assert.equal(other.status, 400);
    assert.match(other.body.error_description, /unknown field user/);
    assert.equal((await apiClient(r.url, undefined).get('/me/audit')).status, 401);
  });

  test('everyone else\'s audit is for admins only', async () => {
    const alice = await apiClient(r.url, tokens.alice.access_token).get('/audit');
    assert.equal(alice.status, 403);
    assert.equal(alice.body.error, 'insufficient_scope');
    assert.match(alice.headers.get('www-authenticate')!, /scope="mcp:admin"/);
    assert.equal((await apiClient(r.url, undefined).get('/audit')).status, 401);
  });

  test('malformed queries are 400 naming the parameter', async () => {
    const cases: [string, RegExp][] = [
      ['since=yesterday', /^query: since: expected an ISO 8601 time/],
      ['until=2026-13-45T00:00:00Z', /^query: until: expected an ISO 8601 time/],
      ['limit=0', /^query: limit: /],
      ['limit=ten', /^query: limit: expected a positive integer/],
      ['limit=5000', /^limit: at most 1000/],
      ['format=xml', /^query: format: expected format: json or jsonl/],
      ['gateway=a&gateway=b', /^query: gateway: /],
      ['colour=red', /^query: unknown field colour/],
    ];
    for (const [query, message] of cases) {
      const res = await admin.get(`/audit?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error, 'invalid_request', query);
      assert.match(res.body.error_description, message, query);
    }
  });
});

describe('what the log never holds', () => {
  test('no token, no password and no credential in any line', async () => {
    const text = (await rawLines()).join('\n');
    const secrets = [apiKey, ...Object.values(tokens).flatMap((t) => [t.access_token, t.refresh_token]), ...Object.values(USERS).map((u) => u.password)];
    for (const secret of secrets) assert.ok(!text.includes(secret), `the audit log holds a secret (${secret.slice(0, 6)}…)`);
  });
});

describe('durability', () => {
  test('entries survive a restart, and the log goes on in the same day file', async () => {
    const before = (await admin.get('/audit?limit=1000')).body.entries as Entry[];
    await r.close();
    r = await startRegistry(config(), env(), { dataDir });
    tokens = await signInAll(r.url);
    admin = apiClient(r.url, tokens.carol.access_token);
    assert.equal((await callEcho(`${r.url}/mcp/team/demo`, tokens.alice.access_token, 'after restart')).status, 200);
    const after = (await admin.get('/audit?limit=1000')).body.entries as Entry[];
    assert.equal(after.length, before.length + 1);
    assert.deepEqual(after.slice(1).map((e) => e.request_id), before.map((e) => e.request_id));
    assert.deepEqual(auditFiles(), [...new Set(after.map((e) => `${e.time.slice(0, 10)}.jsonl`))].sort(), 'appended to the day files, none rewritten elsewhere');
  });

  test('a disk that refuses writes never fails an MCP request; the failure is logged', async () => {
    const blocker = join(dataDir, 'not-a-directory');
    writeFileSync(blocker, 'x');
    const broken = await startRegistry({ ...config(), audit: { dir: join(blocker, 'audit') } }, env());
    try {
      const t = (await signIn(broken.url, USERS.alice)).tokens.access_token;
      for (let i = 0; i < 3; i++) assert.equal((await callEcho(`${broken.url}/mcp/team/demo`, t)).status, 200);
      await (broken.registry.audit as AuditLog).flush();
      assert.ok(broken.log.lines.some((l) => /audit log .*could not append/.test(l)), broken.log.lines.join('\n'));
    } finally {
      await broken.close();
    }
  });
});
