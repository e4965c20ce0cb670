import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createRegistry } from '../../server/app.ts';
import { parseConfig } from '../../server/config/load.ts';
import { memoryLogger } from '../../server/log.ts';
import { openStore } from '../../server/store/index.ts';
import { startFederatedRegistry } from '../helpers/federated.ts';
import { authorizeUrl, pkce, REDIRECT, registerClient } from '../helpers/oauth.ts';

// A federated registry that cannot work says so at start, naming the key; an
// IdP that cannot be reached at sign-in is an error page, not a hang.

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function build(oauthServer: Record<string, unknown>, env: NodeJS.ProcessEnv = { S: 'secret' }, outbound: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-fed-start-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = parseConfig({ oauth_server: oauthServer, outbound }, '(test)', env);
  const store = await openStore(config.storage, dataDir);
  cleanups.push(() => store.close());
  return createRegistry({ config, publicUrl: 'http://127.0.0.1:1', dataDir, store, log: memoryLogger(), env });
}

describe('federated mode refused at start', () => {
  test('mode federated without a federated block', async () => {
    await assert.rejects(build({ mode: 'federated' }), /^Error: oauth_server\.federated: oauth_server\.mode is federated: configure the upstream identity provider/);
  });

  test('builtin users beside federated sign-in (a way in around allowed_domains)', async () => {
    await assert.rejects(
      build({ mode: 'federated', federated: { upstream_issuer: 'https://idp.example', client_id: 'c', client_secret_env: 'S' }, builtin: { users: [{ username: 'local', password_env: 'S' }] } }),
      /^Error: oauth_server\.builtin\.users: in federated mode people sign in at the identity provider; remove the builtin users/,
    );
  });

  test('a client_secret_env that is not set', async () => {
    await assert.rejects(build({ mode: 'federated', federated: { upstream_issuer: 'https://idp.example', client_id: 'c', client_secret_env: 'MISSING' } }), /^Error: oauth_server\.federated\.client_secret_env: environment variable MISSING is not set/);
  });

  test('an upstream_issuer at the cloud metadata address', async () => {
    await assert.rejects(build({ mode: 'federated', federated: { upstream_issuer: 'https://169.254.169.254/', client_id: 'c', client_secret_env: 'S' } }), /^Error: oauth_server\.federated\.upstream_issuer: refusing to fetch https:\/\/169\.254\.169\.254/);
  });

  test('a keycloak server_url on loopback without outbound.allow_loopback', async () => {
    await assert.rejects(
      build({ mode: 'federated', federated: { provider: 'keycloak', keycloak: { server_url: 'http://127.0.0.1:8080', realm: 'r' }, client_id: 'c', client_secret_env: 'S' } }),
      /^Error: oauth_server\.federated\.keycloak\.server_url: .*loopback address \(allow with outbound\.allow_loopback\)/,
    );
  });
});

describe('an identity provider that cannot be reached', () => {
  test('sign-in shows an error page naming the IdP\'s host, and the log says why', async () => {
    const f = await startFederatedRegistry({ upstream_issuer: 'http://127.0.0.1:9' });
    cleanups.push(() => f.close());
    const { client_id } = await registerClient(f.registry.url);
    const res = await fetch(authorizeUrl(f.registry.url, { response_type: 'code', client_id, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 'st' }), { redirect: 'manual' });
    assert.equal(res.status, 502);
    assert.match(await res.text(), /Keygate could not reach 127\.0\.0\.1:9 to sign you in/);
    assert.match(f.registry.log.lines.join('\n'), /the identity provider http:\/\/127\.0\.0\.1:9 cannot be reached: .*ECONNREFUSED/);
  });
});
