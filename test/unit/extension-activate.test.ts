import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMMANDS, MCP_PROVIDER_ID, PROVIDER_ID } from '../../extension/contributions.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { authorizeWithLogin } from '../helpers/form.ts';
import { MemorySecretStore } from './extension-fakes.ts';
import { createFakeVscode, McpHttpServerDefinition, Uri } from './extension-fake-vscode.ts';

// The real bundle (built by scripts/build-extension.mjs), activated in a fake
// VS Code against a real registry: the thin adapters get exercised too.

const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

describe('the bundled extension in a fake VS Code', () => {
  let f: Fixture;
  let other: Fixture;
  let dir: string;
  const { vscode, state } = createFakeVscode();
  const secrets = new MemorySecretStore();
  const context = { secrets, subscriptions: [] as { dispose(): unknown }[], extension: { id: 'keygate.keygate', packageJSON: manifest } };
  let mcpChanges = 0;

  const mcp = () => state.mcpProviders.get(MCP_PROVIDER_ID)!;
  const provide = async (): Promise<McpHttpServerDefinition[]> => mcp().provideMcpServerDefinitions({});
  const labels = async () => (await provide()).map((d) => d.label).sort();
  const settle = () => new Promise((r) => setTimeout(r, 50));

  before(async () => {
    [f, other] = await Promise.all([startFixture(), startFixture()]);
    dir = mkdtempSync(join(tmpdir(), 'keygate-ext-'));
    const built = spawnSync(process.execPath, ['scripts/build-extension.mjs', '--outfile', join(dir, 'extension.cjs')], { cwd: root, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    mkdirSync(join(dir, 'node_modules', 'vscode'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', 'vscode', 'index.js'), 'module.exports = globalThis.__keygateFakeVscode;\n');
    (globalThis as Record<string, unknown>).__keygateFakeVscode = vscode;

    state.settings.set('keygate.registryUrl', `${f.registry.url}/`);
    state.browser = async (url) => {
      const params = await authorizeWithLogin(url, ALICE.username, ALICE.password);
      state.uriHandlers[0].handleUri(Uri.parse(`vscode://keygate.keygate/auth-callback?${params}`));
    };
    const extension = createRequire(join(dir, 'extension.cjs'))('./extension.cjs');
    extension.activate(context);
    mcp().onDidChangeMcpServerDefinitions(() => mcpChanges++);
  });

  after(async () => {
    for (const d of context.subscriptions.splice(0).reverse()) d.dispose();
    await Promise.all([f.close(), other.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('activate() registers what the manifest contributes, each as a disposable subscription', () => {
    assert.deepEqual([...state.authProviders.keys()], [PROVIDER_ID]);
    assert.equal(state.authProviders.get(PROVIDER_ID)!.label, 'Keygate');
    assert.deepEqual(state.authProviders.get(PROVIDER_ID)!.options, { supportsMultipleAccounts: false });
    assert.deepEqual([...state.mcpProviders.keys()], [MCP_PROVIDER_ID]);
    assert.deepEqual([...state.commands.keys()].sort(), Object.values(COMMANDS).sort());
    assert.equal(state.uriHandlers.length, 1);
    assert.ok(state.outputChannels.has('Keygate'));
    assert.ok(context.subscriptions.length >= 8);
  });

  test('signed out, the MCP provider offers the public gateway only', async () => {
    assert.deepEqual(await labels(), ['Keygate: open']);
  });

  test('"Keygate: Sign In" signs in through the browser and the UriHandler; private gateways then resolve with a Bearer header', async () => {
    const before = mcpChanges;
    await state.commands.get(COMMANDS.signIn)!();
    assert.ok(state.messages.includes('info: Keygate: signed in as alice@example.com.'), state.messages.join('\n'));
    await settle();
    assert.ok(mcpChanges > before, 'VS Code was told to list MCP servers again');
    assert.deepEqual(await labels(), ['Keygate: open', 'Keygate: team']);

    const team = (await provide()).find((d) => d.label === 'Keygate: team')!;
    assert.equal(team.uri.toString(true), `${f.registry.url}/mcp/team`);
    assert.deepEqual(team.headers, {}, 'no token in the eagerly listed definition');
    const resolved: McpHttpServerDefinition = await mcp().resolveMcpServerDefinition(team, {});
    assert.match(resolved.headers.Authorization!, /^Bearer eyJ/);
    assert.equal([...secrets.values.keys()].length, 1, 'the session is in SecretStorage');
  });

  test('the output channel never shows the token it handed out', async () => {
    const [session] = await state.authProviders.get(PROVIDER_ID)!.provider.getSessions([], {});
    const lines = state.outputChannels.get('Keygate')!;
    assert.ok(lines.some((l) => l.includes('signed in to')));
    for (const line of lines) assert.ok(!line.includes(session.accessToken), line);
  });

  test('"Keygate: Select Registry" switches to a typed registry and signs out of the previous one', async () => {
    state.answers.push(
      (items: { label: string }[]) => items.find((i) => i.label.includes('Enter a registry URL')),
      `${other.registry.url}/`,
      'Switch', // the modal "signs you out" warning
    );
    const before = mcpChanges;
    await state.commands.get(COMMANDS.selectRegistry)!();
    await settle();
    assert.equal(state.settings.get('keygate.registryUrl'), other.registry.url);
    assert.equal(secrets.values.size, 0, 'the old registry session was removed');
    assert.ok(mcpChanges > before);
    assert.deepEqual(await labels(), ['Keygate: open']);
    const team = new McpHttpServerDefinition('Keygate: team', Uri.parse(`${f.registry.url}/mcp/team`));
    assert.equal(await mcp().resolveMcpServerDefinition(team, {}), undefined, 'a definition of the old registry is not started');
  });

  test('"Keygate: Sign Out" says when nobody is signed in', async () => {
    await state.commands.get(COMMANDS.signOut)!();
    assert.equal(state.messages.at(-1), 'info: Keygate: not signed in.');
  });
});
