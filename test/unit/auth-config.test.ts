import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../server/config/load.ts';
import { checkAudience, readClaim, stringList } from '../../server/inbound/claims.ts';
import { discoveryTarget } from '../../server/net/authorization-server.ts';

// The auth and oauth_server.federated sections: the seed's keys parse, and
// each bad value is refused at start with a message that names the key.

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, '(test)', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('auth: the seed\'s keys', () => {
  test('the complete OAuth example of the MCP bridge seed parses, with its durations', () => {
    const config = parseConfig(
      {
        auth: {
          type: 'oauth',
          oauth: {
            discovery_url: 'https://auth.example.com',
            audience: 'mcp-bridge-api',
            required_scopes: ['mcp:read', 'mcp:write'],
            claims: { subject_claim: 'sub', email_claim: 'email', roles_claim: 'roles' },
            validation: { allowed_algorithms: ['RS256', 'ES256'], clock_skew: '30s', require_expiration: true, max_token_age: '1h' },
            jwks: { refresh_interval: '1h', fetch_timeout: '10s' },
            introspection: { enabled: true, endpoint: 'https://auth.example.com/oauth/introspect', client_id: 'mcp-bridge', client_secret: '${OAUTH_CLIENT_SECRET}' },
          },
        },
      },
      '(test)',
      { OAUTH_CLIENT_SECRET: 's3cret' },
    );
    const oauth = config.auth.oauth!;
    assert.equal(oauth.validation.clock_skew, 30);
    assert.equal(oauth.validation.max_token_age, 3600);
    assert.equal(oauth.jwks.refresh_interval, 3600);
    assert.equal(oauth.jwks.cooldown, 30);
    assert.equal(oauth.introspection!.client_secret, 's3cret');
    assert.equal(oauth.claims.groups_claim, 'groups');
    assert.equal(oauth.claims.scope_claim, 'scope');
  });

  test('the seed\'s short introspection form and a remote validation endpoint parse', () => {
    assert.deepEqual(problems({ auth: { type: 'oauth', oauth: { introspection_url: 'https://auth.example.com/oauth/introspect', client_id: 'mcp-bridge', client_secret_env: 'S' } } }), []);
    assert.deepEqual(problems({ auth: { type: 'bearer', bearer: { validation_endpoint: 'https://auth.example.com/validate' } } }), []);
    assert.deepEqual(problems({ auth: { type: 'oauth', oauth: { jwks_url: 'http://127.0.0.1:8080/jwks', audience: 'a', validation: { clock_skew: 0 } } } }), []);
  });
});

describe('auth: refused at start', () => {
  const cases: [string, unknown, RegExp][] = [
    ['an HMAC algorithm in allowed_algorithms', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', validation: { allowed_algorithms: ['RS256', 'HS256'] } } } }, /^auth\.oauth\.validation\.allowed_algorithms\[1\]: "HS256" is not allowed: .*only asymmetric|only RS256/],
    ['alg none in allowed_algorithms', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', validation: { allowed_algorithms: ['none'] } } } }, /allowed_algorithms\[0\]: "none" is not allowed/],
    ['an empty allowed_algorithms', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', validation: { allowed_algorithms: [] } } } }, /allowed_algorithms: list at least one algorithm/],
    ['a plain-http discovery_url to another host', { auth: { type: 'oauth', oauth: { discovery_url: 'http://auth.example.com' } } }, /^auth\.oauth\.discovery_url: expected an https URL \(plain http only for an identity provider on this machine/],
    ['a jwks_url that is not a URL', { auth: { type: 'oauth', oauth: { jwks_url: 'keys.json' } } }, /^auth\.oauth\.jwks_url: expected an https URL/],
    ['both discovery_url and jwks_url', { auth: { type: 'oauth', oauth: { discovery_url: 'https://a.example', jwks_url: 'https://a.example/jwks' } } }, /^auth\.oauth\.jwks_url: set discovery_url or jwks_url, not both/],
    ['auth.type oauth without an oauth block', { auth: { type: 'oauth' } }, /^auth\.oauth: auth\.type oauth needs an oauth block/],
    ['an oauth block with no way to validate tokens', { auth: { type: 'oauth', oauth: { audience: 'a' } } }, /^auth\.oauth: auth\.type oauth needs a way to validate tokens/],
    ['introspection without client credentials', { auth: { type: 'oauth', oauth: { introspection_url: 'https://a.example/introspect' } } }, /^auth\.oauth\.client_id: introspection needs client_id and client_secret/],
    ['introspection enabled with neither endpoint nor discovery', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', introspection: { client_id: 'c', client_secret: 's' } } } }, /^auth\.oauth\.introspection\.endpoint: set introspection\.endpoint \(or discovery_url/],
    ['a client_secret and a client_secret_env at once', { auth: { type: 'oauth', oauth: { introspection_url: 'https://a.example/i', client_id: 'c', client_secret: 's', client_secret_env: 'S' } } }, /^auth\.oauth\.client_secret: set client_secret or client_secret_env, not both/],
    ['a negative clock_skew', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', validation: { clock_skew: '-5s' } } } }, /^auth\.oauth\.validation\.clock_skew: expected a duration/],
    ['an unknown key under oauth', { auth: { type: 'oauth', oauth: { jwks_url: 'https://a.example/jwks', audiences: ['a'] } } }, /^auth\.oauth: unknown key "audiences"/],
    ['auth.type bearer with neither tokens nor a validation endpoint', { auth: { type: 'bearer', bearer: {} } }, /^auth\.bearer\.valid_tokens: auth\.type bearer needs at least one token in bearer\.valid_tokens, or bearer\.validation_endpoint/],
    ['a validation endpoint over plain http to another host', { auth: { type: 'bearer', bearer: { validation_endpoint: 'http://auth.example.com/validate' } } }, /^auth\.bearer\.validation_endpoint: expected an https URL/],
  ];
  for (const [name, raw, message] of cases) {
    test(`${name} is refused`, () => {
      const found = problems(raw);
      assert.ok(found.some((p) => message.test(p)), `expected ${message}, got:\n${found.join('\n')}`);
    });
  }
});

describe('oauth_server.federated: refused at start', () => {
  const federated = (f: Record<string, unknown>) => ({ oauth_server: { mode: 'federated', federated: { client_id: 'c', client_secret_env: 'S', ...f } } });
  const cases: [string, unknown, RegExp][] = [
    ['provider oidc without upstream_issuer', federated({}), /^oauth_server\.federated\.upstream_issuer: provider oidc needs upstream_issuer/],
    ['an unknown provider', federated({ provider: 'myspace' }), /^oauth_server\.federated\.provider: expected provider to be one of oidc, github, google, keycloak, atlassian, salesforce/],
    ['keycloak without server_url and realm', federated({ provider: 'keycloak' }), /^oauth_server\.federated\.keycloak: provider keycloak needs keycloak\.server_url and keycloak\.realm/],
    ['github settings with another provider', federated({ provider: 'google', github: { server_url: 'https://github.example.com' } }), /^oauth_server\.federated\.github: github: settings only apply with provider: github/],
    ['an upstream_issuer beside a preset', federated({ provider: 'github', upstream_issuer: 'https://github.com' }), /^oauth_server\.federated\.upstream_issuer: provider github knows its issuer/],
    ['admin_users without admin_scopes', federated({ upstream_issuer: 'https://idp.example', admin_users: ['boss@example.com'] }), /^oauth_server\.federated\.admin_scopes: admin_users are listed but admin_scopes is empty/],
    ['an allowed domain that is not a domain', federated({ upstream_issuer: 'https://idp.example', allowed_domains: ['@example.com'] }), /^oauth_server\.federated\.allowed_domains\[0\]: expected a domain name/],
    ['a literal client secret', federated({ upstream_issuer: 'https://idp.example', client_secret: 'x' }), /^oauth_server\.federated: unknown key "client_secret"/],
    ['a plain-http upstream issuer on another host', federated({ upstream_issuer: 'http://idp.example' }), /^oauth_server\.federated\.upstream_issuer: expected an https URL/],
    ['a mode that does not exist', { oauth_server: { mode: 'ldap' } }, /^oauth_server\.mode: .*"builtin"\|"federated"/],
  ];
  for (const [name, raw, message] of cases) {
    test(`${name} is refused`, () => {
      const found = problems(raw);
      assert.ok(found.some((p) => message.test(p)), `expected ${message}, got:\n${found.join('\n')}`);
    });
  }

  test('the seed\'s federated example parses', () => {
    const config = parseConfig(
      {
        oauth_server: {
          enabled: true,
          issuer: 'https://mcp.example.com',
          mode: 'federated',
          token_lifetime: '1h',
          federated: {
            upstream_issuer: 'https://accounts.google.com',
            client_id: '${GOOGLE_CLIENT_ID}',
            client_secret_env: 'GOOGLE_CLIENT_SECRET',
            scopes: ['openid', 'email', 'profile'],
            allowed_domains: ['Example.com'],
            default_scopes: ['mcp:read'],
            admin_users: ['admin@example.com'],
            admin_scopes: ['mcp:read', 'mcp:write', 'mcp:admin'],
          },
          allowed_redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
        },
      },
      '(test)',
      { GOOGLE_CLIENT_ID: 'gid.apps.googleusercontent.com' },
    );
    assert.equal(config.oauth_server.mode, 'federated');
    assert.equal(config.oauth_server.federated!.provider, 'oidc');
    assert.deepEqual(config.oauth_server.federated!.allowed_domains, ['example.com'], 'domains are compared lowercase');
  });
});

describe('claims and discovery URLs', () => {
  test('a dotted claim name is a key of its own first (Auth0 namespaced claims), then a path (Keycloak realm_access.roles)', () => {
    assert.deepEqual(readClaim({ 'https://example.com/roles': ['a'] }, 'https://example.com/roles'), ['a']);
    assert.deepEqual(readClaim({ realm_access: { roles: ['admin'] } }, 'realm_access.roles'), ['admin']);
    assert.equal(readClaim({ realm_access: 'x' }, 'realm_access.roles'), undefined);
  });

  test('scopes are a space-separated string or an array (scp)', () => {
    assert.deepEqual(stringList('mcp:read  mcp:write'), ['mcp:read', 'mcp:write']);
    assert.deepEqual(stringList(['mcp:read', 3, '']), ['mcp:read']);
    assert.deepEqual(stringList(undefined), []);
  });

  test('a token is held to the configured audience, or else must name one', () => {
    assert.equal(checkAudience(['x', 'api'], ['api']), undefined);
    assert.throws(() => checkAudience('other', ['api']), /for another audience \(expected api\)/);
    assert.throws(() => checkAudience(undefined, ['api']), /names no audience/);
    assert.deepEqual(checkAudience('https://kg.example/mcp', undefined), ['https://kg.example/mcp']);
    assert.throws(() => checkAudience([], undefined), /names no audience/);
  });

  test('a discovery URL may be the issuer or either well-known document', () => {
    assert.deepEqual(discoveryTarget('https://kc.example/realms/x'), { issuer: new URL('https://kc.example/realms/x'), algorithm: 'oidc' });
    assert.deepEqual(discoveryTarget('https://kc.example/realms/x/.well-known/openid-configuration'), { issuer: new URL('https://kc.example/realms/x'), algorithm: 'oidc' });
    assert.deepEqual(discoveryTarget('https://as.example/.well-known/oauth-authorization-server/tenant'), { issuer: new URL('https://as.example/tenant'), algorithm: 'oauth2' });
  });
});
