import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../server/config/load.ts';
import { configuredClients } from '../../server/oauth/clients.ts';

// oauth_server.clients for headless agents: client_credentials and token
// exchange are for confidential clients, and token exchange needs an admin's
// explicit token_exchange block. A problem names the key.

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function problemsOf(clients: unknown[], users: unknown[] = []): string[] {
  try {
    parseConfig({ oauth_server: { clients, builtin: { users } } }, '(test)', { SECRET: 's3cret-value' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('the configuration was accepted');
}

describe('agent clients in the configuration', () => {
  test('a confidential client with both grants loads; token_exchange adds its grant type and keeps its policy', () => {
    const config = parseConfig(
      { oauth_server: { clients: [{ client_id: 'reporter', name: 'Reporter', client_secret_env: 'SECRET', grant_types: ['client_credentials'], scopes: ['mcp:read'], token_exchange: { resources: ['/mcp/team', 'https://kg.example.com/mcp/ops'], users: ['alice', '@example.com'], token_lifetime: '2m' } }] } },
      '(test)',
      { SECRET: 's3cret-value' },
    );
    const [client] = configuredClients(config.oauth_server.clients, { SECRET: 's3cret-value' });
    assert.deepEqual(client!.grant_types, ['client_credentials', TOKEN_EXCHANGE]);
    assert.deepEqual(client!.tokenExchange, { resources: ['/mcp/team', 'https://kg.example.com/mcp/ops'], users: ['alice', '@example.com'], lifetime: 120 });
    assert.equal(client!.token_endpoint_auth_method, 'client_secret_basic');
  });

  test('token exchange defaults to five-minute tokens', () => {
    const config = parseConfig({ oauth_server: { clients: [{ client_id: 'a', name: 'A', client_secret_env: 'SECRET', token_exchange: { resources: ['/mcp/team'] } }] } }, '(test)', { SECRET: 'x' });
    assert.equal(config.oauth_server.clients[0]!.token_exchange!.token_lifetime, 300);
  });

  for (const [what, clients, users, expected] of [
    ['client_credentials on a public client', [{ client_id: 'a', name: 'A', grant_types: ['client_credentials'] }], [], /clients\[0\]\.grant_types: the client_credentials grant is for confidential clients/],
    ['token_exchange on a public client', [{ client_id: 'a', name: 'A', token_exchange: { resources: ['/mcp/team'] } }], [], /clients\[0\]\.token_exchange: token exchange is for confidential clients/],
    ['the token-exchange grant without an admin\'s token_exchange block', [{ client_id: 'a', name: 'A', client_secret_env: 'SECRET', grant_types: [TOKEN_EXCHANGE] }], [], /clients\[0\]\.token_exchange: .*needs an admin's permission/],
    ['token_exchange without resources', [{ client_id: 'a', name: 'A', client_secret_env: 'SECRET', token_exchange: { resources: [] } }], [], /token_exchange\.resources: list at least one resource/],
    ['a resource that is neither a URL nor an /mcp path', [{ client_id: 'a', name: 'A', client_secret_env: 'SECRET', token_exchange: { resources: ['team'] } }], [], /token_exchange\.resources\[0\]/],
    ['an unknown token_exchange key', [{ client_id: 'a', name: 'A', client_secret_env: 'SECRET', token_exchange: { resources: ['/mcp/team'], allowed: true } }], [], /token_exchange: .*allowed/],
    ['a client acting as itself named like a person', [{ client_id: 'alice', name: 'A', client_secret_env: 'SECRET', grant_types: ['client_credentials'] }], [{ username: 'alice', password_env: 'SECRET' }], /clients\[0\]\.client_id: "alice" is also a builtin user/],
  ] as const) {
    test(`refused: ${what}`, () => {
      const problems = problemsOf([...clients], [...users]);
      assert.ok(problems.some((p) => expected.test(p)), problems.join('\n'));
    });
  }
});
