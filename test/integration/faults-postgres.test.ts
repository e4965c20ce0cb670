import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { callEcho } from '../helpers/control.ts';
import { ALICE } from '../helpers/fixture.ts';
import { authorizeUrl, pkce, REDIRECT, signIn } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';

// Issue 12: PostgreSQL restarted, or hanging, under a stream of writes. While
// it is down, a request that must write answers 503 in the endpoint's own
// error form (never a 500, never a hang) and /healthz says so; MCP calls that
// need no write go on; once it is back, writes succeed again without a
// restart of the registry, and nothing acknowledged before is lost. The
// database is a real PostgreSQL with fsync on.

let pg: TestPostgres;
let upstream: DemoUpstream;
let registry: TestRegistry;
const apiKey = `k-${randomBytes(12).toString('hex')}`;

before(async () => {
  pg = await startPostgres({ durable: true });
  upstream = await startDemoUpstream({ apiKey });
  registry = await startRegistry(
    {
      storage: { type: 'postgres' },
      vault: { key_env: 'VAULT_KEY' },
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] }, registration: { rate_limit: { loopback: false } } },
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
    },
    { ALICE_PASSWORD: ALICE.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await pg.createDatabase() },
  );
});
after(async () => {
  await registry?.close();
  await upstream?.close();
  await pg?.stop();
});

/** A dynamic client registration (a store write): its status, and the client id when acknowledged. Never waits past 20 s (a hang fails the test). */
async function register(): Promise<{ status: number; clientId?: string; error?: string }> {
  const res = await fetch(`${registry.url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'load' }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { client_id?: string; error?: string };
  return { status: res.status, clientId: body.client_id, error: body.error };
}

/** Is this client known to the registry? (Its authorization request shows the sign-in page; an unknown client is refused.) */
async function known(clientId: string): Promise<boolean> {
  const { challenge } = pkce();
  const res = await fetch(authorizeUrl(registry.url, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 's' }), { redirect: 'manual' });
  await res.arrayBuffer();
  return res.status === 200;
}

const health = async () => (await fetch(`${registry.url}/healthz`, { signal: AbortSignal.timeout(20_000) })).status;

/** A tools/call of echo on the team's server (control.ts): its HTTP status. */
const echo = async (token: string) => (await callEcho(`${registry.url}/mcp/team/demo`, token)).status;

describe('PostgreSQL goes away under a stream of writes', () => {
  for (const fault of ['restarted', 'hanging'] as const) {
    test(`${fault}: writes answer 503 (not 500, not a hang) and /healthz says so; MCP calls go on; then writes succeed again, and nothing acknowledged is lost`, { timeout: 120_000 }, async () => {
      const { tokens } = await signIn(registry.url, ALICE, { resource: `${registry.url}/mcp/team` });
      assert.equal(await echo(tokens.access_token), 200, 'warm: the identity and the token are known');
      const acknowledged: string[] = [];
      const answers = new Map<string, number>();
      let stopWriting = false;
      const writer = async () => {
        while (!stopWriting) {
          const r = await register().catch((err: Error) => ({ status: 0, error: err.name, clientId: undefined }));
          const key = `${r.status} ${r.error ?? ''}`.trim();
          answers.set(key, (answers.get(key) ?? 0) + 1);
          if (r.status === 201) acknowledged.push(r.clientId!);
        }
      };
      const refused = () => answers.get('503 temporarily_unavailable') ?? 0;
      const writers = Array.from({ length: 4 }, writer);
      while (acknowledged.length < 20) await new Promise((r) => setTimeout(r, 20));

      if (fault === 'restarted') await pg.halt();
      else pg.freeze();
      try {
      // Down: /healthz is unhealthy, an MCP call (no write) is still served, and the writers see 503s.
        assert.equal(await health(), 503);
        assert.equal(await echo(tokens.access_token), 200, 'an MCP call of a known caller needs no database');
        const before = refused();
        while (refused() < before + 4) await new Promise((r) => setTimeout(r, 50));

      } finally {
        if (fault === 'restarted') await pg.resume();
        else pg.thaw();
      }
      while ((await health()) !== 200) await new Promise((r) => setTimeout(r, 100));
      const afterCount = acknowledged.length;
      while (acknowledged.length < afterCount + 10) await new Promise((r) => setTimeout(r, 20));
      stopWriting = true;
      await Promise.all(writers);
      assert.deepEqual([...answers.keys()].sort(), ['201', '503 temporarily_unavailable'], `only acknowledged writes and 503s (never a 500, never a hang): ${JSON.stringify([...answers])}`);
      for (const id of acknowledged) assert.ok(await known(id), `client ${id}, acknowledged, is still there`);
      assert.ok(!registry.log.lines.some((l) => l.includes(pg.url.split('@')[0]!.split(':').at(-1)!)), 'the database password never reaches the log');
    });
  }
});
