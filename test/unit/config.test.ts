import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseDuration } from '../../server/config/duration.ts';
import { ConfigError, expandEnv, loadConfig, parseConfig } from '../../server/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'keygate-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function yamlFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('the configuration was accepted');
}

const upstream = { id: 'everything', url: 'http://127.0.0.1:3001/mcp' };

describe('configuration', () => {
  test("the design card's smallest file loads, with ${ENV} expanded", () => {
    const file = yamlFile(
      'small.yaml',
      `server:
  listen: 127.0.0.1:8787
  public_url: \${PUBLIC_URL}
auth:
  type: none
oauth_server:
  enabled: true
  mode: builtin
  builtin:
    users:
      - username: alice
        password_env: ALICE_PASSWORD
        scopes: [mcp:read, mcp:write]
upstreams:
  - id: everything
    url: http://127.0.0.1:3001/mcp
    credential:
      type: none
gateways:
  - id: team
    visibility: public
    servers:
      - upstream: everything
        identity: shared
`,
    );
    const config = loadConfig(file, { PUBLIC_URL: 'https://keygate.example.com' });
    assert.equal(config.server.public_url, 'https://keygate.example.com');
    assert.equal(config.oauth_server.token_lifetime, 3600);
    assert.equal(config.gateways[0]!.servers[0]!.identity, 'shared');
  });

  // Each bad configuration names the file, the key path and what was expected.
  const bad: [string, string, Record<string, string>, RegExp][] = [
    ['unknown key', 'server:\n  listne: 127.0.0.1:1\n', {}, /^server: unknown key "listne"$/],
    ['unknown top-level section', 'upstream: []\n', {}, /^\(top level\): unknown key "upstream"$/],
    ['wrong enum', 'auth:\n  type: kerberos\n', {}, /^auth\.type: .*"none"\|"bearer"/],
    ['wrong type', 'oauth_server:\n  enabled: "yes"\n', {}, /^oauth_server\.enabled: .*boolean/],
    ['bad duration', 'oauth_server:\n  token_lifetime: soon\n', {}, /^oauth_server\.token_lifetime: expected a positive duration/],
    ['bad URL', 'upstreams:\n  - id: x\n    url: ftp://x\n', {}, /^upstreams\[0\]\.url: expected an http\(s\) URL/],
    ['bad id', 'upstreams:\n  - id: Has Spaces\n    url: http://x\n', {}, /^upstreams\[0\]\.id: expected a lowercase id/],
    ['unset environment variable', 'server:\n  public_url: ${NOPE}\n', {}, /^server\.public_url: environment variable NOPE is not set$/],
    ['both password kinds', 'oauth_server:\n  builtin:\n    users:\n      - username: a\n        password_env: A\n        password_hash: "$2b$10$abcdefghijklmnopqrstuu1234567890123456789012345678901"\n', {}, /^oauth_server\.builtin\.users\[0\]: set exactly one of password_hash or password_env$/],
    ['dangling upstream', `upstreams:\n  - id: a\n    url: http://x\ngateways:\n  - id: g\n    servers:\n      - upstream: b\n        identity: shared\n`, {}, /^gateways\[0\]\.servers\[0\]\.upstream: no upstream with id "b"$/],
    ['duplicate id', `upstreams:\n  - id: a\n    url: http://x\n  - id: a\n    url: http://y\n`, {}, /^upstreams\[1\]\.id: duplicate id "a"$/],
    ['shared server without a credential', `upstreams:\n  - id: a\n    url: http://x\n    credential: { type: bearer }\ngateways:\n  - id: g\n    servers:\n      - upstream: a\n        identity: shared\n`, {}, /^gateways\[0\]\.servers\[0\]\.shared_identity: upstream "a" needs a credential/],
    ['identity for the wrong upstream', `upstreams:\n  - id: a\n    url: http://x\n    credential: { type: bearer }\n  - id: b\n    url: http://y\n    credential: { type: bearer }\nidentities:\n  - id: i\n    upstream: b\n    token_env: T\ngateways:\n  - id: g\n    servers:\n      - upstream: a\n        identity: shared\n        shared_identity: i\n`, {}, /shared_identity: identity "i" is for upstream "b", not "a"$/],
    ['bearer without tokens', 'auth:\n  type: bearer\n', {}, /^auth\.bearer\.valid_tokens: auth\.type bearer needs at least one token/],
    ['a public resource server', 'oauth_server:\n  clients:\n    - client_id: rs\n      name: RS\n      resource_server: true\n', {}, /^oauth_server\.clients\[0\]\.resource_server: a resource server authenticates to the introspection endpoint \(RFC 7662 §2\.1\): set client_secret_env$/],
    ['no registration limit', 'oauth_server:\n  registration:\n    rate_limit:\n      per_address: 0\n', {}, /^oauth_server\.registration\.rate_limit\.per_address: /],
    ['unknown registration key', 'oauth_server:\n  registration:\n    max: 5\n', {}, /^oauth_server\.registration: unknown key "max"$/],
  ];
  for (const [name, text, env, expected] of bad) {
    test(`refuses: ${name}`, () => {
      const file = yamlFile(`${name.replace(/\W+/g, '-')}.yaml`, text);
      const problems = problemsOf(() => loadConfig(file, env));
      assert.ok(problems.some((p) => expected.test(p)), `expected ${expected} in:\n${problems.join('\n')}`);
      try {
        loadConfig(file, env);
      } catch (err) {
        assert.ok((err as Error).message.startsWith(`${file}: invalid configuration`));
      }
    });
  }

  test('refuses YAML syntax errors and duplicate keys, with the line', () => {
    const broken = yamlFile('broken.yaml', 'server:\n  listen: [unclosed\n');
    assert.match(problemsOf(() => loadConfig(broken)).join('\n'), /YAML syntax: .*\(line \d+, column \d+\)/);
    const dup = yamlFile('dup.yaml', 'server:\n  listen: 127.0.0.1:1\n  listen: 127.0.0.1:2\n');
    assert.match(problemsOf(() => loadConfig(dup)).join('\n'), /YAML syntax: .*(unique|duplicate)/i);
  });

  test('refuses a file that is not a mapping, or does not exist', () => {
    assert.match(problemsOf(() => loadConfig(yamlFile('list.yaml', '- a\n- b\n')))[0]!, /expected a mapping/);
    assert.match(problemsOf(() => loadConfig(join(dir, 'missing.yaml')))[0]!, /cannot read the file \(ENOENT\)/);
  });

  test('a config with no gateways and no users is still valid (empty registry)', () => {
    const config = parseConfig({}, '(test)');
    assert.deepEqual(config.gateways, []);
    assert.equal(config.storage.type, 'lowdb');
  });

  test('dynamic registration is bounded by default: 20 per address an hour (loopback not counted), 1,000 clients, unused ones kept 24 h', () => {
    assert.deepEqual(parseConfig({}, '(test)').oauth_server.registration, { rate_limit: { per_address: 20, window: 3600, loopback: false }, max_clients: 1000, unused_client_ttl: 86400 });
    const set = parseConfig({ oauth_server: { registration: { rate_limit: { window: '10m', loopback: true }, unused_client_ttl: '2h' } } }, '(test)').oauth_server.registration;
    assert.deepEqual(set, { rate_limit: { per_address: 20, window: 600, loopback: true }, max_clients: 1000, unused_client_ttl: 7200 });
  });

  test('${ENV} expansion works on values only and can be escaped', () => {
    assert.deepEqual(expandEnv({ a: 'x-${A}-y', b: ['${B}'], c: '$${A}', d: 5 }, { A: '1', B: 'two' }), { a: 'x-1-y', b: ['two'], c: '${A}', d: 5 });
    // A value cannot inject structure: it stays a string.
    assert.deepEqual(expandEnv({ a: '${A}' }, { A: '{ evil: true }\nother: 1' }), { a: '{ evil: true }\nother: 1' });
  });

  test('durations', () => {
    assert.equal(parseDuration('30s'), 30);
    assert.equal(parseDuration('15m'), 900);
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration('30d'), 2592000);
    assert.equal(parseDuration(90), 90);
    for (const bad of ['', '1x', 'h', '-1h', '1.5h', 0, -3, 1.5]) assert.equal(parseDuration(bad as string | number), undefined, String(bad));
  });

  test('an upstream with credential type none needs no identity', () => {
    const config = parseConfig({ upstreams: [upstream], gateways: [{ id: 'g', servers: [{ upstream: 'everything', identity: 'shared' }] }] }, '(test)');
    assert.equal(config.gateways[0]!.visibility, 'private', 'gateways are private unless said otherwise');
  });
});

describe('storage', () => {
  const key = { key_env: 'VAULT_KEY' };

  test('the URL comes only from the environment: a url in the file is refused, naming url_env', () => {
    assert.throws(
      () => parseConfig({ storage: { type: 'postgres', url: 'postgres://k:secret@db/k' }, vault: key }, 'keygate.yaml'),
      (err: unknown) => err instanceof ConfigError && /storage\.url: the database URL carries its password/.test(err.message) && /url_env/.test(err.message) && !err.message.includes('secret'),
    );
  });

  test('storage.type postgres without vault.key_env is refused at config load, saying why', () => {
    assert.throws(
      () => parseConfig({ storage: { type: 'postgres', url_env: 'DB_URL' } }, 'keygate.yaml'),
      (err: unknown) => err instanceof ConfigError && /vault\.key_env: required with storage\.type: postgres/.test(err.message),
    );
    assert.equal(parseConfig({ storage: { type: 'postgres', url_env: 'DB_URL' }, vault: key }, 'keygate.yaml').storage.url_env, 'DB_URL');
  });

  test('lowdb takes path, postgres takes url_env: each refuses the other\'s key', () => {
    assert.deepEqual(problemsOf(() => parseConfig({ storage: { type: 'lowdb', url_env: 'DB_URL' } }, '(test)')), ['storage.url_env: url_env is for storage.type: postgres']);
    assert.deepEqual(problemsOf(() => parseConfig({ storage: { type: 'postgres', path: 'x.json' }, vault: key }, '(test)')), ['storage.path: path is for storage.type: lowdb']);
  });
});
