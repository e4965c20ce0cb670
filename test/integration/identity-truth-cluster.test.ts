import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { builtinTeam, startCluster, type Cluster } from '../helpers/cluster.ts';
import { apiClient } from '../helpers/control.ts';
import { startFeatureUpstream, type FeatureUpstream } from '../helpers/feature-upstream.ts';
import { ALICE, BOB } from '../helpers/fixture.ts';
import { connect, eventually } from '../helpers/merged-gateway.ts';
import { signIn } from '../helpers/oauth.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

// Issue 14 across instances: selections live in the store (PostgreSQL), the
// gateway's caches on each instance follow it. Bob selects Alice's global
// identity through one instance and calls through both; Alice makes it
// private through the other: Bob's calls on both carry his own credential,
// /me/servers on both says so, and his listener on the first is told; made
// global again, it does not come back to him.

let postgres: TestPostgres;
let crm: FeatureUpstream;
let cluster: Cluster;
let aliceToken: string;
let bobToken: string;
const text = (result: { content?: unknown }) => (result.content as { type: string; text: string }[]).map((c) => c.text).join('');

before(async () => {
  postgres = await startPostgres();
  crm = await startFeatureUpstream({ eras: 'both', name: 'crm' });
  cluster = await startCluster(
    {
      ...builtinTeam([ALICE, BOB]),
      upstreams: [
        { id: 'crm', url: crm.url, credential: { type: 'bearer' } },
        { id: 'open', url: crm.url, credential: { type: 'none' } },
      ],
      // Two servers: /mcp/hub is the merged endpoint, which tells its callers of list changes (a gateway of one server is that server, forwarded as is).
      gateways: [{ id: 'hub', visibility: 'private', servers: [{ upstream: 'crm', identity: 'per_user' }, { upstream: 'open', identity: 'shared' }] }],
    },
    { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, VAULT_KEY: randomBytes(32).toString('base64'), KEYGATE_DATABASE_URL: await postgres.createDatabase() },
  );
  aliceToken = (await signIn(cluster.url, ALICE)).tokens.access_token;
  bobToken = (await signIn(cluster.url, BOB)).tokens.access_token;
});
after(async () => {
  await cluster?.close();
  await crm?.close();
  await postgres?.stop();
});

const api = (token: string, i: number) => {
  const client = apiClient(cluster.url, token);
  return (method: string, path: string, body?: unknown) => client.call(method, path, body, cluster.to(i));
};

/** Bob's whoami on /mcp/hub/crm through instance i: the credential the upstream saw. */
async function bobCallsOn(i: number): Promise<string> {
  const { client } = await connect(`${cluster.url}/mcp/hub/crm`, '2026-07-28', { token: bobToken, headers: cluster.to(i) });
  try {
    return text(await client.callTool({ name: 'whoami', arguments: {} }));
  } finally {
    await client.close();
  }
}

/** Which identity /me/servers on instance i says serves Bob on hub/crm. */
async function bobsIdentityOn(i: number): Promise<string | undefined> {
  const res = await api(bobToken, i)('GET', '/me/servers');
  return res.body.servers.find((s: { server: string }) => s.server === 'crm')?.identity?.id;
}

/** Poll (bounded) until `probe` answers `expected`: a change on one instance reaches the other soon after it commits. */
async function until<T>(probe: () => Promise<T>, expected: T, what: string): Promise<void> {
  let last: T | undefined;
  for (let i = 0; i < 100; i++) {
    last = await probe();
    if (last === expected) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(last, expected, what);
}

test('a global identity made private on one instance ends Bob\'s selection on every instance (his listener there is told); global again, it does not come back to him', async () => {
  const created = await api(aliceToken, 1)('POST', '/me/identities', { upstream: 'crm', token: 'alice-crm-global', availability: 'global' });
  const shared = created.body.id as string;
  const own = (await api(bobToken, 0)('POST', '/me/identities', { upstream: 'crm', token: 'bob-crm-own' })).body.id as string;
  assert.equal((await api(bobToken, 0)('PUT', '/me/selections', { gateway: 'hub', server: 'crm', identity: shared })).status, 204);
  for (const i of [0, 1]) await until(() => bobCallsOn(i), 'Bearer alice-crm-global', `instance ${i} serves Bob with Alice's global identity`);

  let told = 0;
  const { client: listener } = await connect(`${cluster.url}/mcp/hub`, '2026-07-28', { token: bobToken, headers: cluster.to(0), configure: (c) => c.setNotificationHandler('notifications/tools/list_changed', () => void told++) });
  const listen = await listener.listen({ toolsListChanged: true });
  try {
    assert.equal((await api(aliceToken, 1)('PATCH', `/me/identities/${shared}`, { availability: 'private' })).status, 200);
    await eventually(() => told > 0, "Bob's listener on the other instance is told", 10_000);
    for (const i of [0, 1]) {
      await until(() => bobsIdentityOn(i), own, `/me/servers on instance ${i}: his own identity`);
      await until(() => bobCallsOn(i), 'Bearer bob-crm-own', `instance ${i}: his own credential`);
    }

    const before = told;
    assert.equal((await api(aliceToken, 1)('PATCH', `/me/identities/${shared}`, { availability: 'global' })).status, 200);
    // Once instance 0 tells Bob of this change, it has taken in every change before it (the selection's end among them).
    await eventually(() => told > before, 'told of the identity turned global again', 10_000);
    for (const i of [0, 1]) {
      assert.equal(await bobsIdentityOn(i), own, `/me/servers on instance ${i}: still his own`);
      assert.equal(await bobCallsOn(i), 'Bearer bob-crm-own', `instance ${i}: not Alice's credential until Bob selects it again`);
    }
  } finally {
    await listen.close();
    await listener.close();
  }
});
