import { randomBytes } from 'node:crypto';
import { startDemoUpstream, type DemoUpstream } from '../../server/demo/upstream.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

export const ALICE = { username: 'alice', password: 'correct horse battery staple' };
export const BOB = { username: 'bob', password: 'tr0ub4dor&3 but longer' };

export interface Fixture {
  upstream: DemoUpstream;
  registry: TestRegistry;
  apiKey: string;
  close(): Promise<void>;
}

/**
 * The demo upstream (a real v2 SDK MCP server that wants an API key) behind a
 * registry with two builtin users and a private gateway "team" whose server
 * "demo" uses a shared identity holding the key.
 */
export async function startFixture(overrides: (config: Record<string, any>) => void = () => {}, env: NodeJS.ProcessEnv = {}): Promise<Fixture> {
  const apiKey = `demo-${randomBytes(16).toString('hex')}`;
  const upstream = await startDemoUpstream({ apiKey });
  const config: Record<string, any> = {
    oauth_server: {
      builtin: {
        users: [
          { username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'], email: 'alice@example.com' },
          { username: BOB.username, password_env: 'BOB_PASSWORD', scopes: ['mcp:read'] },
        ],
      },
    },
    upstreams: [{ id: 'demo', url: upstream.url, credential: { type: 'bearer' } }],
    identities: [{ id: 'svc', upstream: 'demo', label: 'Service account', token_env: 'DEMO_KEY' }],
    gateways: [
      { id: 'team', visibility: 'private', servers: [{ upstream: 'demo', identity: 'shared', shared_identity: 'svc' }] },
      { id: 'open', visibility: 'public', servers: [{ upstream: 'demo', name: 'tools', identity: 'shared', shared_identity: 'svc' }] },
    ],
  };
  overrides(config);
  let registry: TestRegistry;
  try {
    registry = await startRegistry(config, { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, DEMO_KEY: apiKey, ...env });
  } catch (err) {
    // A registry that refuses to start must not leave the upstream listening: the test process would never exit.
    await upstream.close();
    throw err;
  }
  return {
    upstream,
    registry,
    apiKey,
    async close() {
      await registry.close();
      await upstream.close();
    },
  };
}
