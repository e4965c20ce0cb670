import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startRegistry } from '../helpers/registry.ts';
import { spawnRegistry } from '../helpers/spawn.ts';
import { signIn } from '../helpers/oauth.ts';

// `keygate-registry vault rotate`: every stored credential is re-sealed under
// a new key, and the gateway goes on using it.

let upstream: DemoUpstream;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
before(async () => {
  upstream = await startDemoUpstream({ apiKey });
});
after(() => upstream.close());

const config = () => ({
  upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
  identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
  gateways: [{ id: 'g', visibility: 'public', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
});

const sealedKid = (dataDir: string) => (JSON.parse(readFileSync(join(dataDir, 'store.json'), 'utf8')).collections.identities.svc.payload.secret.kid as string);

async function callsThrough(url: string) {
  const res = await fetch(`${url}/mcp/g/demo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  return res.status;
}

test('with a generated key file: a new key becomes active and the identity is re-sealed under it', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-vault-'));
  try {
    const first = await startRegistry(config(), { DEMO_KEY: apiKey }, { dataDir });
    const before = sealedKid(dataDir);
    await first.close();
    const run = spawnRegistry(['vault', 'rotate', '--data-dir', dataDir]);
    assert.equal(await run.exit, 0, run.stderr());
    const keys = JSON.parse(readFileSync(join(dataDir, 'vault-keys.json'), 'utf8')) as { active: string; keys: Record<string, string> };
    assert.match(run.stdout(), new RegExp(`vault key ${keys.active} is active; re-sealed 1 stored credential`));
    assert.notEqual(keys.active, before);
    assert.equal(Object.keys(keys.keys).length, 2, 'the old key is kept (backups sealed under it still open)');
    assert.equal(sealedKid(dataDir), keys.active);
    const second = await startRegistry(config(), { DEMO_KEY: apiKey }, { dataDir });
    try {
      assert.equal(await callsThrough(second.url), 200);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('with vault.key_env: the new key in key_env, the old one in previous_key_envs, rotate re-seals', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-vault-env-'));
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  try {
    const first = await startRegistry({ ...config(), vault: { key_env: 'VAULT_KEY' } }, { DEMO_KEY: apiKey, VAULT_KEY: oldKey }, { dataDir });
    const before = sealedKid(dataDir);
    await first.close();
    // Without the old key the credential cannot be opened: the call fails in the vault step.
    const lost = await startRegistry({ ...config(), identities: [], vault: { key_env: 'VAULT_KEY' } }, { DEMO_KEY: apiKey, VAULT_KEY: newKey }, { dataDir });
    try {
      const res = await callsThrough(lost.url);
      assert.equal(res, 500);
      assert.ok(lost.log.lines.some((l) => /identity svc could not be decrypted/.test(l)));
      assert.ok(!lost.log.lines.join('\n').includes(apiKey));
    } finally {
      await lost.close();
    }
    const { writeFileSync } = await import('node:fs');
    const file = join(dataDir, 'rotate.yaml');
    writeFileSync(file, 'vault:\n  key_env: VAULT_KEY\n  previous_key_envs: [OLD_VAULT_KEY]\n');
    const run = spawnRegistry(['vault', 'rotate', '--config', file, '--data-dir', dataDir], { VAULT_KEY: newKey, OLD_VAULT_KEY: oldKey });
    assert.equal(await run.exit, 0, run.stderr());
    assert.notEqual(sealedKid(dataDir), before);
    const after = await startRegistry({ ...config(), identities: [], vault: { key_env: 'VAULT_KEY' } }, { DEMO_KEY: apiKey, VAULT_KEY: newKey }, { dataDir });
    try {
      assert.equal(await callsThrough(after.url), 200, 'the new key alone opens the re-sealed credential');
    } finally {
      await after.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a credential the vault cannot open: /api/v1/me/servers says unavailable (not ready), as the gateway then refuses the call', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-vault-unreadable-'));
  const alice = { username: 'alice', password: 'alice pass phrase long' };
  const withUsers = () => ({
    ...config(),
    vault: { key_env: 'VAULT_KEY' },
    oauth_server: { builtin: { users: [{ username: 'alice', password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
    gateways: [{ id: 'g', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }, { upstream: 'demo', name: 'mine', identity: 'per_user' }] }],
  });
  const env = (key: string) => ({ DEMO_KEY: apiKey, VAULT_KEY: key, ALICE_PASSWORD: alice.password });
  const states = async (url: string, token: string) => {
    const res = await fetch(`${url}/api/v1/me/servers`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { servers: { server: string; state: string; reason?: string }[] };
    return Object.fromEntries(body.servers.map((s) => [s.server, s]));
  };
  const call = async (url: string, token: string, server: string) => {
    const res = await fetch(`${url}/mcp/g/${server}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    const body = (await res.json()) as { error?: { data?: { reason?: string } } };
    return [res.status, body.error?.data?.reason];
  };
  const oldKey = randomBytes(32).toString('base64');
  try {
    const r1 = await startRegistry(withUsers(), env(oldKey), { dataDir });
    try {
      const token = (await signIn(r1.url, alice)).tokens.access_token;
      const saved = await fetch(`${r1.url}/api/v1/me/identities`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ upstream: 'demo', token: apiKey }) });
      assert.equal(saved.status, 201, await saved.clone().text());
      const now = await states(r1.url, token);
      assert.deepEqual([now.demo!.state, now.mine!.state], ['ready', 'ready']);
      assert.deepEqual(await call(r1.url, token, 'mine'), [200, undefined]);
    } finally {
      await r1.close();
    }
    // The same store opened with another vault key (a lost or wrong key): neither credential opens.
    const newKey = randomBytes(32).toString('base64');
    const r2 = await startRegistry({ ...withUsers(), identities: [] }, env(newKey), { dataDir });
    try {
      const token = (await signIn(r2.url, alice)).tokens.access_token;
      const now = await states(r2.url, token);
      for (const server of ['demo', 'mine']) {
        assert.equal(now[server]!.state, 'unavailable', server);
        assert.match(now[server]!.reason!, /vault key/);
        assert.deepEqual(await call(r2.url, token, server), [500, 'identity_unreadable'], 'what the state said');
      }
      assert.ok(!JSON.stringify(now).includes(apiKey));
    } finally {
      await r2.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
