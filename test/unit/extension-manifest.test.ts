import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AUDIT_LANGUAGE,
  COMMAND_TITLES,
  COMMANDS,
  MCP_PROVIDER_ID,
  MCP_PROVIDER_LABEL,
  PROVIDER_ID,
  PROVIDER_LABEL,
  REGISTRY_SETTING,
  SIDEBAR_VIEW_ID,
  VIEW_CONTAINER_ID,
  WALKTHROUGH_ID,
} from '../../extension/contributions.ts';
import { DEFAULT_REGISTRY_URL } from '../../extension/registry-url.ts';

// package.json `contributes` and the code agree; vsce's own rules hold.

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

describe('extension manifest', () => {
  test('the extension id is keygate.keygate and main is the CommonJS bundle', () => {
    assert.equal(`${pkg.publisher}.${pkg.name}`, 'keygate.keygate');
    assert.equal(pkg.main, './dist/extension.cjs');
    // At start-up (after the window is up) so the status bar shows the sign-in state; everything else activates by contribution.
    assert.deepEqual(pkg.activationEvents, ['onStartupFinished']);
    assert.match(pkg.engines.vscode, /^\^1\.101\./);
  });

  test('the authentication provider and the MCP provider are contributed under the ids the code registers', () => {
    assert.deepEqual(pkg.contributes.authentication, [{ id: PROVIDER_ID, label: PROVIDER_LABEL }]);
    assert.deepEqual(pkg.contributes.mcpServerDefinitionProviders, [{ id: MCP_PROVIDER_ID, label: MCP_PROVIDER_LABEL }]);
  });

  test('the audit document has a language of its own, word-wrapped by default', () => {
    assert.deepEqual(pkg.contributes.languages, [{ id: AUDIT_LANGUAGE, aliases: ['Keygate Audit'] }]);
    assert.deepEqual(pkg.contributes.configurationDefaults, { [`[${AUDIT_LANGUAGE}]`]: { 'editor.wordWrap': 'on' } });
  });

  test('every command is contributed in the Keygate category, and only those', () => {
    const contributed = pkg.contributes.commands as { command: string; title: string; category: string }[];
    assert.deepEqual(contributed.map((c) => c.command).sort(), Object.values(COMMANDS).sort());
    for (const c of contributed) assert.equal(c.category, 'Keygate');
    assert.deepEqual(Object.fromEntries(contributed.map((c) => [c.command, c.title])), COMMAND_TITLES);
    assert.deepEqual(Object.values(COMMAND_TITLES), [
      'Sign In',
      'Sign Out',
      'Select Registry',
      'Open Sidebar',
      'Connect an Identity',
      'Copy Cursor Configuration',
      'Show the Audit of My Calls',
      'Refresh',
    ]);
  });

  test('an activity-bar container "Keygate" holds the sidebar webview view', () => {
    assert.deepEqual(pkg.contributes.viewsContainers.activitybar.map((c: { id: string; title: string }) => [c.id, c.title]), [[VIEW_CONTAINER_ID, 'Keygate']]);
    const [view] = pkg.contributes.views[VIEW_CONTAINER_ID];
    assert.equal(view.type, 'webview');
    assert.equal(view.id, SIDEBAR_VIEW_ID);
    for (const icon of [pkg.contributes.viewsContainers.activitybar[0].icon, view.icon]) assert.ok(existsSync(join(root, icon)), icon);
    const titleMenu = pkg.contributes.menus['view/title'] as { command: string; when: string }[];
    assert.ok(titleMenu.every((m) => m.when.includes(`view == ${SIDEBAR_VIEW_ID}`) && Object.values(COMMANDS).includes(m.command as never)));
  });

  test('the first-run walkthrough has steps whose media ship in the .vsix and whose links are our commands', () => {
    const [walkthrough] = pkg.contributes.walkthroughs;
    assert.equal(walkthrough.id, WALKTHROUGH_ID);
    assert.ok(walkthrough.steps.length >= 4);
    const allowed = readFileSync(join(root, '.vscodeignore'), 'utf8');
    for (const step of walkthrough.steps) {
      assert.ok(existsSync(join(root, step.media.markdown)), step.media.markdown);
      assert.ok(allowed.includes('!media/walkthrough/*.md'));
      for (const [, command] of (step.description as string).matchAll(/\(command:([\w.]+)\)/g)) {
        assert.ok(Object.values(COMMANDS).includes(command as never) || command === 'workbench.mcp.listServer', command);
      }
      assert.ok(step.completionEvents.length > 0);
    }
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
    assert.ok(lines.includes('!dist/webview.js') && lines.includes('!dist/webview.css'), 'the sidebar bundle ships');
    assert.ok(lines.every((l) => l === '**' || l.startsWith('!')));
  });
});
