import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startCluster, type Cluster } from '../helpers/cluster.ts';
import { ALICE } from '../helpers/fixture.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// Two registry processes on one real PostgreSQL behind a reverse proxy on
// loopback (test/helpers/cluster.ts): what one instance does, every other
// one honours.

let pg: TestPostgres;
let upstream: DemoUpstream;
let cluster: Cluster;
const apiKey = `k-${randomBytes(12).toString('hex')}`;
const env = { ALICE_PASSWORD: ALICE.password, DEMO_KEY: apiKey, VAULT_KEY: randomBytes(32).toString('base64') };

before(async () => {
  pg = await startPostgres();
  upstream = await startDemoUpstream({ apiKey });
  cluster = await startCluster(
    {
      storage: { type: 'postgres' },
      vault: { key_env: 'VAULT_KEY' },
      oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
      upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
      identities: [{ id: 'svc', upstream: 'demo', token_env: 'DEMO_KEY' }],
      gateways: [{ id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] }],
    },
    { ...env, KEYGATE_DATABASE_URL: await pg.createDatabase() },
  );
});
after(async () => {
  await cluster?.close();
  await upstream?.close();
  await pg?.stop();
});

describe('two instances on one PostgreSQL', () => {
  test('both instances are healthy behind the proxy', async () => {
    for (let i = 0; i < cluster.instances.length; i++) {
      const res = await fetch(`${cluster.url}/healthz`, { headers: cluster.to(i) });
      assert.equal(res.status, 200);
    }
  });

});
