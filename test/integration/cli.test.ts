import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { authorizeWithLogin } from '../helpers/form.ts';
import { connectWithSignIn } from '../helpers/mcp-oauth.ts';
import { spawnRegistry } from '../helpers/spawn.ts';

// The keygate-registry bin, run as a user runs it.

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'keygate-cli-'));
  dirs.push(d);
  return d;
}
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('keygate-registry', () => {
  test('without a config it runs the embedded demo: healthz, demo user, demo gateway, password printed once', { timeout: 60_000 }, async () => {
    const data = tempDir();
    let epoch = '';
    const first = spawnRegistry(['--port', '0', '--data-dir', data]);
    try {
      const url = await first.url;
      assert.ok(url, `did not start: ${first.stderr()}`);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${url}/healthz`);
      assert.deepEqual(await health.json(), { status: 'ok' });
      // The epoch names this start of the registry (its in-memory MCP sessions): the same on every answer until a restart.
      epoch = health.headers.get('keygate-epoch') ?? '';
      assert.match(epoch, /^[0-9a-f-]{36}$/);
      assert.equal((await fetch(`${url}/healthz`)).headers.get('keygate-epoch'), epoch);
      await new Promise((r) => setTimeout(r, 100));
      const out = first.stdout();
      const password = /demo password:\s+(\S+)\s+\(shown once/.exec(out)?.[1];
      assert.ok(password, out);
      assert.match(out, new RegExp(`demo gateway:\\s+${url}/mcp/demo`));
      assert.match(first.stderr(), /WARNING: generated a development vault key/);
      // Next steps: the one-command VS Code trial; the registry URL setting only because this is not its default address.
      assert.match(out, /npm run try:vscode/);
      assert.match(out, new RegExp(`after setting keygate\\.registryUrl to ${url}\\.`));
      // The printed credentials work: a real MCP client signs in and calls a demo tool.
      const { client } = await connectWithSignIn(`${url}/mcp/demo`, '2026-07-28', { username: 'demo', password });
      // The demo gateway has two servers: one MCP server with prefixed names.
      const { tools } = await client.listTools();
      const personalTool = tools.find((t) => t.name.startsWith('personal__'));
      assert.ok(tools.some((t) => t.name === 'demo__echo') && personalTool, tools.map((t) => t.name).join(', '));
      const result = await client.callTool({ name: 'demo__echo', arguments: { message: 'hello demo' } });
      assert.deepEqual(result.content, [{ type: 'text', text: 'hello demo' }]);
      const personal = await client.callTool({ name: personalTool!.name, arguments: {} });
      assert.equal(personal.isError, true, 'the personal server is not connected yet');
      assert.match(JSON.stringify(personal.content), new RegExp(`${url}/connect/demo/personal`));
      await client.close();
      // Nothing secret in the data dir in clear but the demo upstream's own key; the password is only a hash.
      assert.ok(!readFileSync(join(data, 'demo.json'), 'utf8').includes(password));
    } finally {
      assert.equal(await first.stop(), 0, 'SIGTERM shuts down cleanly');
    }

    const second = spawnRegistry([], { KEYGATE_PORT: '0', KEYGATE_DATA_DIR: data });
    try {
      const url = await second.url;
      assert.ok(url, second.stderr());
      const restarted = (await fetch(`${url}/healthz`)).headers.get('keygate-epoch');
      assert.ok(restarted && restarted !== epoch, 'a restart gives the registry a new epoch');
      await new Promise((r) => setTimeout(r, 100));
      assert.doesNotMatch(second.stdout(), /shown once/);
      assert.match(second.stdout(), /--reset-demo-password/);
    } finally {
      await second.stop();
    }
  });

  test('a bad config file stops start-up with exit code 2, naming the file and key', { timeout: 30_000 }, async () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(file, 'server:\n  listen: 127.0.0.1:0\ngateways:\n  - id: g\n    visibility: secret\n    servers: []\n');
    const run = spawnRegistry(['--config', file, '--data-dir', tempDir()]);
    assert.equal(await run.exit, 2);
    assert.equal(await run.url, undefined);
    assert.match(run.stderr(), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid configuration`));
    assert.match(run.stderr(), /gateways\[0\]\.visibility: .*"public"\|"private"/);
    assert.match(run.stderr(), /gateways\[0\]\.servers: a gateway needs at least one server/);
  });

  test('--config with ${ENV}, --port 0 and --data-dir: the configured user signs in', { timeout: 30_000 }, async () => {
    const file = join(tempDir(), 'ok.yaml');
    writeFileSync(file, `oauth_server:\n  builtin:\n    users:\n      - username: \${ADMIN_NAME}\n        password_env: ADMIN_PASSWORD\n        scopes: [mcp:read]\n`);
    const run = spawnRegistry(['--config', file, '--port', '0', '--data-dir', tempDir()], { ADMIN_NAME: 'root', ADMIN_PASSWORD: 'p4ssw0rd-long-enough' });
    try {
      const url = await run.url;
      assert.ok(url, run.stderr());
      const reg = (await (await fetch(`${url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }) })).json()) as { client_id: string };
      const authorize = new URL(`${url}/oauth/authorize`);
      authorize.search = new URLSearchParams({ response_type: 'code', client_id: reg.client_id, redirect_uri: 'http://127.0.0.1/cb', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();
      const params = await authorizeWithLogin(authorize, 'root', 'p4ssw0rd-long-enough');
      assert.ok(params.get('code'));
    } finally {
      await run.stop();
    }
  });

  test('a missing password_env variable stops start-up with a clear message', { timeout: 30_000 }, async () => {
    const file = join(tempDir(), 'env.yaml');
    writeFileSync(file, 'oauth_server:\n  builtin:\n    users:\n      - username: a\n        password_env: KEYGATE_TEST_UNSET_PASSWORD\n');
    const run = spawnRegistry(['--config', file, '--port', '0', '--data-dir', tempDir()]);
    assert.equal(await run.exit, 1);
    assert.match(run.stderr(), /oauth_server\.builtin\.users\[0\]\.password_env: environment variable KEYGATE_TEST_UNSET_PASSWORD is not set/);
  });

  test('a corrupt store stops start-up, and the file is left as it was', { timeout: 30_000 }, async () => {
    const data = tempDir();
    writeFileSync(join(data, 'store.json'), '{"version":1,"collections":{"clients":');
    const run = spawnRegistry(['--port', '0', '--data-dir', data]);
    assert.equal(await run.exit, 1);
    assert.match(run.stderr(), /store\.json is not valid JSON .* left untouched/);
    assert.equal(readFileSync(join(data, 'store.json'), 'utf8'), '{"version":1,"collections":{"clients":');
  });

  test('bad arguments are refused with the usage', { timeout: 30_000 }, async () => {
    const port = spawnRegistry(['--port', 'eighty']);
    assert.equal(await port.exit, 2);
    assert.match(port.stderr(), /--port must be a number/);
    const unknown = spawnRegistry(['--prot', '1']);
    assert.equal(await unknown.exit, 2);
    assert.match(unknown.stderr(), /Usage: keygate-registry/);
  });
});
