import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMMANDS, MCP_PROVIDER_ID, MCP_PROVIDER_LABEL, PROVIDER_ID, PROVIDER_LABEL, REGISTRY_SETTING } from '../../extension/contributions.ts';
import { DEFAULT_REGISTRY_URL } from '../../extension/registry-url.ts';

// package.json `contributes` and the code agree; vsce's own rules hold.

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

describe('extension manifest', () => {
  test('the extension id is keygate.keygate and main is the CommonJS bundle', () => {
    assert.equal(`${pkg.publisher}.${pkg.name}`, 'keygate.keygate');
    assert.equal(pkg.main, './dist/extension.cjs');
    assert.deepEqual(pkg.activationEvents, [], 'present (vsce requires it with main); activation comes from the contributions');
    assert.match(pkg.engines.vscode, /^\^1\.101\./);
  });

  test('the authentication provider and the MCP provider are contributed under the ids the code registers', () => {
    assert.deepEqual(pkg.contributes.authentication, [{ id: PROVIDER_ID, label: PROVIDER_LABEL }]);
    assert.deepEqual(pkg.contributes.mcpServerDefinitionProviders, [{ id: MCP_PROVIDER_ID, label: MCP_PROVIDER_LABEL }]);
  });

  test('every command is contributed in the Keygate category, and only those', () => {
    const contributed = pkg.contributes.commands as { command: string; title: string; category: string }[];
    assert.deepEqual(contributed.map((c) => c.command).sort(), Object.values(COMMANDS).sort());
    for (const c of contributed) assert.equal(c.category, 'Keygate');
    assert.deepEqual(Object.fromEntries(contributed.map((c) => [c.command, c.title])), {
      'keygate.signIn': 'Sign In',
      'keygate.signOut': 'Sign Out',
      'keygate.selectRegistry': 'Select Registry',
    });
  });

  test('keygate.registryUrl is a documented string defaulting to the local registry, set per user', () => {
    const setting = pkg.contributes.configuration.properties[`${REGISTRY_SETTING.section}.${REGISTRY_SETTING.key}`];
    assert.equal(setting.type, 'string');
    assert.equal(setting.default, DEFAULT_REGISTRY_URL);
    assert.ok(setting.description.length > 20);
    assert.equal(setting.scope, 'application', 'a workspace cannot point the extension at another registry');
  });

  test('.vscodeignore is an allow-list that ships the bundle', () => {
    const lines = readFileSync(join(root, '.vscodeignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    assert.equal(lines[0], '**');
    assert.ok(lines.includes('!dist/extension.cjs'));
    assert.ok(lines.every((l) => l === '**' || l.startsWith('!')));
  });
});
