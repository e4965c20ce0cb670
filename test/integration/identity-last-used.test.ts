import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiClient, callEcho, CAROL, DAVE, startControlFixture } from '../helpers/control.ts';
import { signInToConsole } from '../helpers/console.ts';
import { ALICE, type Fixture } from '../helpers/fixture.ts';
import { signInAdmin } from '../helpers/oauth.ts';

// "Last used" on the console's identities page (and `last_used` in the admin
// API's list of identities): the latest call made with
// each identity, learnt from the audit stream (as connections are) and kept
// in the store, so it holds however many calls came since (it used to be
// looked for among the newest 10,000 audit records: seconds, on a busy
// registry), after a restart, and after the audit records are gone.

let f: Fixture;

before(async () => {
  f = await startControlFixture((config) => {
    // An identity nobody calls with: its last use stays "—".
    config.identities.push({ id: 'idle', upstream: 'demo', label: 'Idle account', token_env: 'DEMO_KEY' });
  });
});
after(() => f?.close());

/** The "Last used" cell of an identity's row on /admin/identities. */
async function lastUsed(id: string): Promise<string> {
  const carol = await signInToConsole(f.registry.url, CAROL);
  const page = await (await carol.get('/admin/identities')).text();
  const row = [...page.matchAll(/<tr><td>[^<]*<code>([^<]+)<\/code>.*?<\/tr>/g)].find((m) => m[1] === id);
  assert.ok(row, `no row for ${id}`);
  const cells = [...row[0].matchAll(/<td>(.*?)<\/td>/g)].map((m) => m[1]!);
  return cells[5]!;
}

test('an identity shows when a call last used it, in the console and the API, also after a restart with the audit log emptied; one never used shows none', async () => {
  assert.equal(await lastUsed('svc'), '—');
  assert.equal(await lastUsed('idle'), '—');

  const token = (await signInAdmin(f.registry.url, ALICE)).tokens.access_token;
  const before = Math.floor(Date.now() / 1000);
  assert.equal((await callEcho(`${f.registry.url}/mcp/team/demo`, token)).status, 200);
  const after = Math.ceil(Date.now() / 1000);
  const shown = await lastUsed('svc');
  const at = Date.parse(`${shown.replace(' UTC', 'Z').replace(' ', 'T')}`) / 1000;
  assert.ok(at >= before && at <= after, `${shown} is not the time of the call`);
  assert.equal(await lastUsed('idle'), '—');
  // The admin API says the same.
  const listed = async () => ((await apiClient(f.registry.url, (await signInAdmin(f.registry.url, DAVE)).tokens.access_token).get('/admin/identities')).body as { identities: { id: string; last_used?: number }[] }).identities;
  const byId = new Map((await listed()).map((i) => [i.id, i.last_used]));
  assert.equal(byId.get('svc'), at);
  assert.ok(byId.has('idle') && byId.get('idle') === undefined);

  // Kept in the store: a restarted registry (a new process, say) still knows, with no audit record left to read.
  await f.registry.stop();
  const { rmSync } = await import('node:fs');
  rmSync(`${f.registry.dataDir}/audit`, { recursive: true, force: true });
  await f.registry.start();
  assert.equal(await lastUsed('svc'), shown);
  assert.equal(await lastUsed('idle'), '—');
});

test('an identity deleted and made again under the same id has not been used: its predecessor\'s last use is not its own', async () => {
  const admin = apiClient(f.registry.url, (await signInAdmin(f.registry.url, DAVE)).tokens.access_token);
  const token = (await signInAdmin(f.registry.url, ALICE)).tokens.access_token;
  const lastUsedOfBot = async () => ((await admin.get('/admin/identities')).body as { identities: { id: string; last_used?: number }[] }).identities.find((i) => i.id === 'bot');
  // A gateway served by it, made and removed with it (an identity still assigned cannot be deleted).
  const gateway = { id: 'temp', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'bot' }] };
  assert.equal((await admin.post('/admin/identities', { id: 'bot', upstream: 'demo', label: 'Bot', token: f.apiKey })).status, 201);
  assert.equal((await admin.post('/admin/gateways', gateway)).status, 201);
  assert.equal((await callEcho(`${f.registry.url}/mcp/temp/demo`, token)).status, 200);
  assert.equal(typeof (await lastUsedOfBot())?.last_used, 'number');
  assert.equal((await admin.delete('/admin/gateways/temp')).status, 204);
  assert.equal((await admin.delete('/admin/identities/bot')).status, 204);
  // Made again a second later (a use and a creation in the same second are not told apart).
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal((await admin.post('/admin/identities', { id: 'bot', upstream: 'demo', label: 'Bot again', token: f.apiKey })).status, 201);
  const remade = await lastUsedOfBot();
  assert.ok(remade && remade.last_used === undefined, `the new identity shows ${remade?.last_used}`);
  assert.equal(await lastUsed('bot'), '—');
  // Its own first use shows.
  assert.equal((await admin.post('/admin/gateways', gateway)).status, 201);
  assert.equal((await callEcho(`${f.registry.url}/mcp/temp/demo`, token)).status, 200);
  assert.equal(typeof (await lastUsedOfBot())?.last_used, 'number');
});
