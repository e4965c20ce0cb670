import { randomBytes } from 'node:crypto';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { ALICE, BOB } from './fixture.ts';
import { signIn } from './oauth.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

// A registry with a server of every shape the Keygate sidebar shows, for the
// extension's unit tests (real HTTP, real registry): gateway "team" with
//   shared    the demo upstream through a service account      → ready
//   fields    per-user credential fields kept by the registry  → needs credentials
//   client    per-user fields kept by the client (storage: client)
//   token     per-user bearer token
//   oauth     per-user OAuth at the upstream                   → needs authorization
// The demo upstream takes the service account's key and any key with the personal prefix.

export const PERSONAL_PREFIX = 'demo-personal-';

export interface SidebarRegistry {
  registry: TestRegistry;
  upstream: DemoUpstream;
  apiKey: string;
  /** A fresh access token for a user. */
  token(user?: { username: string; password: string }): Promise<string>;
  close(): Promise<void>;
}

export const FIELDS_CREDENTIAL = {
  type: 'fields',
  fields: [
    { name: 'api_key', label: 'API key', placeholder: `${PERSONAL_PREFIX}…`, description: 'From the demo dashboard', secret: true },
    { name: 'team', label: 'Team', secret: false, required: false },
  ],
  inject: { header: 'Authorization', value: 'Bearer {api_key}' },
};

export async function startSidebarRegistry(): Promise<SidebarRegistry> {
  const apiKey = `svc-${randomBytes(12).toString('hex')}`;
  const upstream = await startDemoUpstream({ apiKey, personalKeyPrefix: PERSONAL_PREFIX });
  const registry = await startRegistry(
    {
      oauth_server: {
        builtin: {
          users: [
            { username: ALICE.username, password_env: 'A', scopes: ['mcp:read', 'mcp:write'], email: 'alice@example.com' },
            { username: BOB.username, password_env: 'B', scopes: ['mcp:read'] },
          ],
        },
      },
      upstreams: [
        { id: 'demo', name: 'Demo', url: upstream.url, credential: { type: 'bearer' } },
        { id: 'demo-fields', name: 'Demo (fields)', description: 'The demo with your own key', url: upstream.url, credential: FIELDS_CREDENTIAL },
        { id: 'demo-token', name: 'Demo (token)', url: upstream.url, credential: { type: 'bearer' } },
        { id: 'linear', name: 'Linear', url: 'http://127.0.0.1:9/mcp', credential: { type: 'oauth', auth_url: 'http://127.0.0.1:9/authorize', token_url: 'http://127.0.0.1:9/token', client_id: 'keygate' } },
      ],
      identities: [{ id: 'svc', upstream: 'demo', label: 'Service account', token_env: 'SVC' }],
      gateways: [
        {
          id: 'team',
          name: 'Team tools',
          visibility: 'private',
          servers: [
            { upstream: 'demo', name: 'shared', identity: 'shared', shared_identity: 'svc' },
            { upstream: 'demo-fields', name: 'fields', identity: 'per_user' },
            { upstream: 'demo-fields', name: 'client', identity: 'per_user', storage: 'client' },
            { upstream: 'demo-token', name: 'token', identity: 'per_user' },
            { upstream: 'linear', name: 'oauth', identity: 'per_user' },
          ],
        },
      ],
    },
    { A: ALICE.password, B: BOB.password, SVC: apiKey },
  );
  return {
    registry,
    upstream,
    apiKey,
    token: async (user = ALICE) => (await signIn(registry.url, user)).tokens.access_token,
    async close() {
      await registry.close();
      await upstream.close();
    },
  };
}
