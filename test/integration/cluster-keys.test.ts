import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT, type JWK } from 'jose';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { signIn, tokenRequest, type TokenSet } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { spawnRegistry } from '../helpers/spawn.ts';

// Signing keys shared by two registry processes on one PostgreSQL
// (oauth/shared-signing-keys.ts): the first instance generates the ring into
// the database, sealed with the vault key; every instance signs and verifies
// with it; `keygate-registry keys rotate` rotates it under the running
// instances.

let pg_: TestPostgres;
let upstream: DemoUpstream;
let cluster: Cluster;
let databaseUrl: string;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
const vaultKey = randomBytes(32).toString('base64');
const env = { ALICE_PASSWORD: ALICE.password, DEMO_KEY: apiKey, VAULT_KEY: vaultKey };

const config = () => ({
  storage: { type: 'postgres' },
  vault: { key_env: 'VAULT_KEY' },
  oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
  upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
  identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
  gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
});

before(async () => {
  pg_ = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
  databaseUrl = await pg_.createDatabase();
  cluster = await startCluster(config(), { ...env, KEYGATE_DATABASE_URL: databaseUrl });
});
after(async () => {
  await cluster?.close();
  await upstream?.close();
  await pg_?.stop();
});

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };

/** A 2026-07-28 tools/call of echo on /mcp/team/demo through instance i; the status and the text the tool answered. */
function echoThrough(c: Cluster, i: number, token: string, message: string): Promise<{ status: number; text?: string; challenge: string | null }> {
  return echoAt(c.url, c.to(i), token, message);
}

async function echoAt(base: string, route: Record<string, string>, token: string, message: string): Promise<{ status: number; text?: string; challenge: string | null }> {
  const res = await fetch(`${base}/mcp/team/demo`, {
    method: 'POST',
    headers: {
      ...route,
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message }, _meta: META } }),
  });
  const raw = await res.text();
  const data = raw.startsWith('{') ? raw : (raw.split('\n').find((l) => l.startsWith('data:'))?.slice(5) ?? raw);
  let text: string | undefined;
  try {
    text = (JSON.parse(data) as { result?: { content?: { text?: string }[] } }).result?.content?.[0]?.text;
  } catch {}
  return { status: res.status, text, challenge: res.headers.get('www-authenticate') };
}

async function jwks(c: Cluster, i: number): Promise<JWK[]> {
  const res = await fetch(`${c.url}/oauth/jwks`, { headers: c.to(i) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { keys: JWK[] }).keys;
}

/** Sign in through the proxy (round-robin: registration, the authorize page, the login post and the token request land on both instances). */
async function tokenThroughProxy(): Promise<string> {
  return (await signIn(cluster.url, ALICE, { resource: `${cluster.url}/mcp/team/demo` })).tokens.access_token;
}

async function signingKeyRows(): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ payload: unknown }>("SELECT payload FROM keygate_records WHERE kind = 'signing_keys'")).rows.map((r) => r.payload);
  } finally {
    await client.end();
  }
}

/** Every property name anywhere in a JSON value. */
function propertyNames(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) propertyNames(v, into);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) (into.add(k), propertyNames(v, into));
  return into;
}

describe('signing keys shared by two instances on one PostgreSQL', () => {
  test('a token issued through the proxy (the flow spread over both instances) calls a tool through instance 0 and instance 1', async () => {
    const token = await tokenThroughProxy();
    for (const i of [0, 1]) {
      const answer = await echoThrough(cluster, i, token, `hello ${i}`);
      assert.equal(answer.status, 200, `instance ${i}: ${answer.challenge}`);
      assert.equal(answer.text, `hello ${i}`);
    }
    // The upstream saw the shared credential, never the caller's token.
    assert.ok(upstream.seen.length > 0);
    for (const seen of upstream.seen) {
      assert.equal(seen.authorization, `Bearer ${apiKey}`);
      assert.ok(!JSON.stringify(seen).includes(token));
    }
  });

  test('both instances publish the same one key in /oauth/jwks', async () => {
    const [first, second] = [await jwks(cluster, 0), await jwks(cluster, 1)];
    assert.equal(first.length, 1);
    assert.deepEqual(second, first);
    assert.equal(decodeProtectedHeader(await tokenThroughProxy()).kid, first[0]!.kid);
  });

  test('two instances started at the same moment on an empty database generate one key between them', async () => {
    const together = await startCluster(config(), { ...env, KEYGATE_DATABASE_URL: await pg_.createDatabase() }, { together: true });
    try {
      const [first, second] = [await jwks(together, 0), await jwks(together, 1)];
      assert.equal(first.length, 1, 'one key');
      assert.deepEqual(second, first, 'the same key on both');
      const generated = together.logs().match(/generated a ES256 signing key/g) ?? [];
      assert.equal(generated.length, 1, 'one instance generated it; the other took it');
    } finally {
      await together.close();
    }
  });

  test('a token signed by a key not in the ring is refused by both instances (401, invalid_token), an unknown kid and a known kid alike', async (t) => {
    const genuine = await tokenThroughProxy();
    const claims = decodeJwt(genuine);
    const { kid } = decodeProtectedHeader(genuine);
    const stranger = await generateKeyPair('ES256');
    const forge = (withKid: string) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: withKid, typ: 'at+jwt' }).sign(stranger.privateKey);
    for (const [what, token] of [
      ['an unknown kid', await forge('not-in-the-ring')],
      ["the ring's kid", await forge(kid!)],
    ] as const) {
      for (const i of [0, 1]) {
        const answer = await echoThrough(cluster, i, token, 'forged');
        assert.equal(answer.status, 401, `${what}, instance ${i}`);
        assert.match(answer.challenge ?? '', /invalid_token/);
      }
    }
    // Unknown kids in a burst (each may make the ring be read again, at most once a second): still refused, and the genuine token still works.
    const burst = await Promise.all(Array.from({ length: 20 }, (_, n) => forge(`unknown-${n}`).then((tok) => echoThrough(cluster, n % 2, tok, 'forged'))));
    assert.deepEqual(new Set(burst.map((a) => a.status)), new Set([401]));
    assert.equal((await echoThrough(cluster, 1, genuine, 'still')).status, 200);
    t.diagnostic('20 tokens with unknown kids refused on both instances');
  });

  test('keys rotate (the bin) under both running instances: new tokens from either are signed by the new key and accepted by both; tokens from before still are', async (t) => {
    const session = await signIn(cluster.url, ALICE, { resource: `${cluster.url}/mcp/team/demo` });
    const before = session.tokens.access_token;
    const oldKid = decodeProtectedHeader(before).kid!;

    const rotate = spawnRegistry(['keys', 'rotate', '--config', cluster.configFile], { ...env, KEYGATE_DATABASE_URL: databaseUrl });
    // The command prints the new kid once the rotation committed: from then on, poll both instances until they sign with it (it is first in their JWKS: the active key).
    const committed = await new Promise<{ at: number; kid: string } | undefined>((resolve) => {
      rotate.child.stdout!.on('data', () => {
        const kid = /signing key (\S+) in the database/.exec(rotate.stdout())?.[1];
        if (kid) resolve({ at: performance.now(), kid });
      });
      void rotate.exit.then(() => resolve(undefined));
    });
    assert.ok(committed, rotate.stderr());
    const newKid = committed.kid;
    assert.notEqual(newKid, oldKid);
    const seen = await Promise.all(
      [0, 1].map(async (i) => {
        for (let tries = 0; (await jwks(cluster, i))[0]?.kid !== newKid; tries++) {
          assert.ok(tries < 500, `instance ${i} never signed with ${newKid}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        return performance.now() - committed.at;
      }),
    );
    t.diagnostic(`instances 0 / 1 signed with the rotated key ${seen.map((ms) => ms.toFixed(1)).join(' / ')} ms after keys rotate printed it (committed)`);
    assert.equal(await rotate.exit, 0, rotate.stderr());

    for (const i of [0, 1]) assert.deepEqual((await jwks(cluster, i)).map((k) => k.kid), [newKid, oldKid], `instance ${i} publishes both`);
    // Tokens issued now by each instance (a refresh sent to it) are signed by the new key; each is accepted by both.
    for (const issuer of [0, 1]) {
      const res = await tokenRequest(cluster.url, { grant_type: 'refresh_token', refresh_token: session.tokens.refresh_token, client_id: session.clientId }, cluster.to(issuer));
      assert.equal(res.status, 200);
      session.tokens = (await res.json()) as TokenSet;
      const after_ = session.tokens.access_token;
      assert.equal(decodeProtectedHeader(after_).kid, newKid, `issued by instance ${issuer}`);
      for (const i of [0, 1]) assert.equal((await echoThrough(cluster, i, after_, 'new')).status, 200, `issued by ${issuer}, called through ${i}`);
    }
    for (const i of [0, 1]) assert.equal((await echoThrough(cluster, i, before, 'old')).status, 200, `the token from before the rotation, through ${i}`);
  });

  test('the key rows in the database hold no private key material in clear, only sealed; the public halves are the JWKS', async () => {
    const rows = await signingKeyRows();
    assert.equal(rows.length, 1, 'one ring');
    const names = propertyNames(rows);
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.ok(!names.has(member), `no "${member}" in the rows`);
    const ring = rows[0] as { keys: { kid: string; public_jwk: JWK; private_jwk: { kid: string; iv: string; ct: string } }[] };
    assert.ok(ring.keys.length >= 2);
    const published = await jwks(cluster, 0);
    for (const key of ring.keys) {
      assert.deepEqual(Object.keys(key.private_jwk).sort(), ['ct', 'iv', 'kid'], 'sealed with the vault');
      assert.ok(published.some((k) => k.kid === key.kid && k.x === key.public_jwk.x && k.y === key.public_jwk.y));
    }
    // And the vault key itself appears in no row, nor in any log.
    assert.ok(!JSON.stringify(rows).includes(vaultKey));
    assert.ok(!cluster.logs().includes(vaultKey) && !cluster.logs().includes(databaseUrl));
  });

  // Last: these change the vault key the running instances hold.
  test('vault rotate re-seals the signing keys: an instance with only the new vault key signs with the same ring and accepts the tokens of the others', async () => {
    const token = await tokenThroughProxy();
    const dir = mkdtempSync(join(tmpdir(), 'keygate-keys-'));
    const newVaultKey = randomBytes(32).toString('base64');
    try {
      // The new key in key_env, the old one under previous_key_envs, as docs/configuration.md says.
      const rotating = join(dir, 'rotating.yaml');
      const raw = JSON.parse(readFileSync(cluster.configFile, 'utf8')) as { vault: Record<string, unknown> };
      writeFileSync(rotating, JSON.stringify({ ...raw, vault: { ...raw.vault, previous_key_envs: ['OLD_VAULT_KEY'] } }));
      const rotate = spawnRegistry(['vault', 'rotate', '--config', rotating, '--data-dir', join(dir, 'cli')], { ...env, VAULT_KEY: newVaultKey, OLD_VAULT_KEY: vaultKey, KEYGATE_DATABASE_URL: databaseUrl });
      assert.equal(await rotate.exit, 0, rotate.stderr());
      assert.match(rotate.stdout(), /and \d+ signing keys?/);

      const fresh = spawnRegistry(['--config', cluster.configFile, '--port', '0', '--data-dir', join(dir, 'fresh')], { ...env, VAULT_KEY: newVaultKey, KEYGATE_DATABASE_URL: databaseUrl });
      try {
        const url = await fresh.url;
        assert.ok(url, fresh.stderr());
        const published = ((await (await fetch(`${url}/oauth/jwks`)).json()) as { keys: JWK[] }).keys;
        assert.deepEqual(published, await jwks(cluster, 0), 'the same ring, nothing generated');
        assert.doesNotMatch(fresh.stdout() + fresh.stderr(), /generated a \w+ signing key/);
        const answer = await echoAt(url, {}, token, 'after vault rotate');
        assert.equal(answer.status, 200, `${answer.challenge}`);
        assert.equal(answer.text, 'after vault rotate');
      } finally {
        await fresh.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an instance whose vault key does not open the signing keys refuses to start, saying why, and generates nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keygate-keys-'));
    const before = await signingKeyRows();
    const otherKey = randomBytes(32).toString('base64');
    try {
      const wrong = spawnRegistry(['--config', cluster.configFile, '--port', '0', '--data-dir', dir], { ...env, VAULT_KEY: otherKey, KEYGATE_DATABASE_URL: databaseUrl });
      assert.equal(await wrong.url, undefined, 'it does not listen');
      assert.notEqual(await wrong.exit, 0);
      assert.match(wrong.stderr(), /signing keys in the store do not open with this vault key/);
      assert.ok(!(wrong.stdout() + wrong.stderr()).includes(otherKey) && !(wrong.stdout() + wrong.stderr()).includes(databaseUrl));
      assert.deepEqual(await signingKeyRows(), before, 'the ring is unchanged');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
