import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GatewayDefinitionProvider } from '../../extension/mcp/gateway-provider.ts';
import { Logger, redact } from '../../extension/log.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authHarness, RecordingSink } from './extension-fakes.ts';

// The `Keygate` output channel never shows a token, a code or a verifier.

describe('extension logging', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  test('a whole session (sign-in, refresh, gateways, a revoked token, sign-out) logs no secret', async () => {
    const h = authHarness(f.registry.url, ALICE);
    const secrets = new Set<string>();
    const keep = (v: string | null | undefined) => v && secrets.add(v);

    const session = await h.auth.createSession([]);
    const first = (await h.store.get(f.registry.url))!;
    keep(first.accessToken);
    keep(first.refreshToken);
    h.clock.ms = first.expiresAt! - 1_000;
    await h.auth.getSessions([]);
    const second = (await h.store.get(f.registry.url))!;
    keep(second.accessToken);
    keep(second.refreshToken);

    const provider = new GatewayDefinitionProvider({
      registry: () => f.registry.url,
      client: (url) => new RegistryClient(url),
      sessions: { silent: async () => second.accessToken, interactive: async () => second.accessToken },
      log: h.log,
    });
    await provider.provide();
    await provider.resolveHeaders(`${f.registry.url}/mcp/team`);

    // The refresh token is reused behind the extension's back: the registry revokes the family,
    // and the extension's next refresh fails and is logged.
    await h.flow.refreshTokenGrant(first.refreshToken!, first.scopes).catch(() => {});
    h.clock.ms = second.expiresAt! - 1_000;
    assert.deepEqual(await h.auth.getSessions([]), []);

    // Things that carry secrets, logged carelessly.
    h.log.error('the registry said', new Error(`rejected Authorization: Bearer ${second.accessToken}`));
    h.log.info(`stored ${JSON.stringify(second)}`);
    h.log.warn(`token request body: grant_type=refresh_token&refresh_token=${second.refreshToken}&client_id=keygate-vscode`);
    await h.auth.removeSession(session.id);

    for (const r of h.tokenRequests) {
      keep(r.params.get('code'));
      keep(r.params.get('code_verifier'));
      keep(r.params.get('refresh_token'));
    }
    for (const redirect of h.ui.redirects) keep(redirect.get('code'));

    assert.ok(secrets.size >= 6, `collected ${secrets.size} secrets`);
    assert.ok(h.sink.lines.length >= 10, `the session was actually logged (${h.sink.lines.length} lines)`);
    for (const line of h.sink.lines) {
      for (const secret of secrets) assert.ok(!line.includes(secret), `a secret leaked into: ${line}`);
    }
    assert.ok(h.sink.lines.some((l) => l.includes('Bearer [redacted]')), 'the careless line was kept, scrubbed');
  });

  test('token-shaped values are scrubbed even when never registered', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJhbGljZSJ9.MEUCIQDx';
    assert.equal(redact(`got ${jwt} back`), 'got [redacted] back');
    assert.equal(redact('Authorization: Bearer abc.def-ghi'), 'Authorization: Bearer [redacted]');
    assert.equal(redact('code=abc123&state=xyz'), 'code=[redacted]&state=xyz');
    assert.equal(redact('{"access_token":"opaque-1234","token_type":"Bearer"}'), '{"access_token":"[redacted]","token_type":"Bearer"}');
  });

  test('registered secrets are scrubbed wherever they appear; short values are not secrets', () => {
    const sink = new RecordingSink();
    const log = new Logger(sink);
    log.addSecret('opaque-refresh-token-value');
    log.addSecret('abc');
    log.info('refresh with opaque-refresh-token-value failed; abc');
    assert.deepEqual(sink.lines, ['info refresh with [redacted] failed; abc']);
  });
});
