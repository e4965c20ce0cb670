import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { codeServerInstall, eventually, saveCodeServerLogs, startCodeServer, VsCodeWindow, type CodeServer } from '../helpers/code-server.ts';
import { ALICE, startFixture, type Fixture } from '../helpers/fixture.ts';
import { packageVsix, signInFromPalette, stepRunner } from '../helpers/keygate-vscode.ts';
import { buildLmToolsExtension, echoResult, LM_TOOLS_COMMANDS, readLmToolsOutput } from '../helpers/lm-tools-extension.ts';
import { isToolsCall, startWiretap, tappedMessages, type Wiretap } from '../helpers/wiretap.ts';

// Issue 2's user story in a real VS Code: code-server 4.139.1 (VS Code 1.139.1)
// with the packaged extension, driven in Chromium through VS Code's own UI.
// A person signs in from the command palette on the registry's login page,
// VS Code's MCP server list offers the private gateway, starting it discovers
// the demo tools, a tool call reaches the upstream with the shared credential
// (through a language-model tool call, as chat would make it), and signing out
// takes it all back. Screenshots of every step: test-output/vscode/.

const shots = outputDir('vscode');
const STEP_TIMEOUT = 3 * 60_000;

let tap: Wiretap;
let f: Fixture;
let dir: string;
let server: CodeServer;
let browser: Browser;
let vs: VsCodeWindow;
let toolOutput: string;
const echoMessage = `hello from VS Code ${randomBytes(6).toString('hex')}`;

/** Why the environment could not be set up (e.g. code-server not installed): every step fails with it. */
let setupFailure: unknown;

const step = stepRunner(() => ({ vs, setupFailure }));

const serverLabels = async () => (await vs.quickPickLabels()).map((l) => l.split(',')[0]!.trim());

/**
 * "MCP: List Servers" until its Keygate rows are `expected`; returns all row
 * labels, with the list left open. The list fills in as providers answer; one
 * opened before the extension host is up can stay empty, so a person (and
 * this test) closes it and asks again.
 */
async function listMcpServers(expected: string[], screenshot: string): Promise<string[]> {
  const labels = await eventually(
    async () => {
      await vs.runCommand('MCP: List Servers');
      return eventually(
        async () => {
          const all = await serverLabels();
          assert.deepEqual(all.filter((l) => l.startsWith('Keygate: ')).sort(), [...expected].sort());
          return all;
        },
        { timeoutMs: 10_000 },
      );
    },
    { timeoutMs: 90_000, message: 'the Keygate servers in "MCP: List Servers"' },
  );
  await vs.screenshot(screenshot);
  return labels;
}


describe('Keygate in VS Code (code-server): sign in, MCP gateway, tool call, sign out', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    try {
      await setUp();
    } catch (err) {
      // Reported by each step as its failure (a failing hook would only cancel them).
      setupFailure = err;
    }
  });

  async function setUp() {
    // Says to run scripts/setup-code-server.mjs when code-server is missing.
    codeServerInstall();
    const vsix = packageVsix();

    dir = mkdtempSync(join(tmpdir(), 'keygate-e2e-'));
    toolOutput = join(dir, 'lm-tools.jsonl');
    writeFileSync(toolOutput, '');
    tap = await startWiretap();
    // The demo upstream behind the registry, with the tap in between.
    f = await startFixture((config) => {
      config.upstreams[0].url = tap.urlFor(config.upstreams[0].url);
    });
    server = await startCodeServer({
      extensions: [vsix, buildLmToolsExtension(dir)],
      settings: { 'keygate.registryUrl': f.registry.url, 'keygateE2e.outputFile': toolOutput, 'keygateE2e.echoMessage': echoMessage },
    });
    browser = await launchChromium();
    vs = await VsCodeWindow.open(browser, server, shots);
  }

  after(async () => {
    if (server) saveCodeServerLogs(server, shots);
    await vs?.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
    await f?.close();
    await tap?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('signed out, "MCP: List Servers" offers the public gateway only', { timeout: STEP_TIMEOUT }, () =>
    step('signed-out', async () => {
      await vs.screenshot('01-workbench');
      await listMcpServers(['Keygate: open'], '02-mcp-servers-signed-out');
      await vs.closeQuickInput();
    }));

  test('(a) "Keygate: Sign In": the registry login page in a new tab, the code back through code-server\'s /callback, the account in VS Code', { timeout: STEP_TIMEOUT }, () =>
    step('sign-in', async () => {
      await signInFromPalette(vs, server, f.registry.url, ALICE, {
        allow: '03-allow-sign-in-dialog',
        openExternal: '04-open-external-website-dialog',
        login: '05-registry-login-page',
        consent: '05b-registry-consent-page',
        callback: '06-code-server-callback-page',
      });

      // The callback page hands the code to the workbench, the extension redeems it.
      const toast = await vs.notification(/Keygate: signed in as alice@example\.com/);
      assert.match(toast, /signed in as alice@example\.com/);
      await vs.screenshot('07-signed-in-notification');
      const accounts = await vs.accountsMenu('08-accounts-menu-signed-in');
      assert.ok(accounts.includes('alice@example.com (Keygate)'), `Accounts menu: ${accounts.join(' | ')}`);
    }));

  test('(b) "MCP: List Servers" offers the private gateway; starting it discovers echo, add and countdown', { timeout: STEP_TIMEOUT }, () =>
    step('mcp-start', async () => {
      const labels = await listMcpServers(['Keygate: open', 'Keygate: team'], '09-mcp-servers-signed-in');
      assert.ok(labels.some((l) => l === 'Keygate: team'));
      await vs.pick('Keygate: team');
      await vs.quickPickRow('Start Server').first().waitFor();
      await vs.screenshot('10-mcp-server-actions');
      await vs.pick('Start Server');

      await vs.runCommand('MCP: List Servers');
      await eventually(async () => assert.ok((await vs.quickPickLabels()).some((l) => /^Keygate: team, Running\b/.test(l)), (await vs.quickPickLabels()).join(' | ')), {
        timeoutMs: 60_000,
        message: 'Keygate: team shows as Running',
      });
      await vs.screenshot('11-mcp-server-running');
      await vs.pick('Keygate: team');
      await vs.pick('Show Output');
      await vs.outputPanel().filter({ hasText: /Discovered\s4\stools/ }).waitFor({ timeout: 60_000 });
      await vs.screenshot('12-mcp-output-discovered-tools');

      await vs.runCommand(LM_TOOLS_COMMANDS.listTools);
      const tools = await eventually(() => {
        const record = readLmToolsOutput(toolOutput).findLast((r) => r.kind === 'tools');
        assert.ok(record, 'the test extension listed the tools');
        return record.value as string[];
      });
      assert.deepEqual(tools.map((name) => name.replace(/^mcp_.*_/, '')).sort(), ['add', 'countdown', 'echo', 'whoami'], `vscode.lm.tools: ${tools.join(', ')}`);
      assert.ok(tools.every((name) => name.startsWith('mcp_')));
      await vs.notification(new RegExp(`${tools.length} MCP tools`));
      await vs.screenshot('13-language-model-tools');
    }));

  test('(c) a tool call from VS Code reaches the upstream through the gateway, with the shared credential', { timeout: STEP_TIMEOUT }, () =>
    step('tool-call', async () => {
      const before = tap.seen.length;
      await vs.runCommand(LM_TOOLS_COMMANDS.callEcho);
      const result = await echoResult(toolOutput);
      assert.equal(result.kind, 'echo', `the tool call failed: ${JSON.stringify(result.value)}`);
      assert.equal(result.value.text, echoMessage);
      await vs.notification(/returned/);
      await vs.screenshot('14-echo-tool-result');

      // What the upstream was asked: this very call, with the service account's key.
      const calls = tap.seen.slice(before).filter(isToolsCall);
      const echo = calls.find((r) => tappedMessages(r).some((m) => m.params?.name === 'echo' && m.params?.arguments?.message === echoMessage));
      assert.ok(echo, `the upstream got tools/call echo "${echoMessage}"; it got: ${JSON.stringify(calls.map((c) => c.body))}`);
      assert.equal(echo.headers.authorization, `Bearer ${f.apiKey}`);
      // Every request the upstream ever got carried the shared credential, never the user's token.
      assert.ok(tap.seen.length > 0);
      for (const r of tap.seen) assert.equal(r.headers.authorization, `Bearer ${f.apiKey}`, `${r.method} ${r.path}`);
      assert.ok(f.upstream.seen.length >= tap.seen.length);
      for (const r of f.upstream.seen) assert.equal(r.authorization, `Bearer ${f.apiKey}`);
    }));

  test('(d) "Keygate: Sign Out": the account leaves VS Code and the private gateway leaves the MCP server list', { timeout: STEP_TIMEOUT }, () =>
    step('sign-out', async () => {
      await vs.runCommand('Keygate: Sign Out');
      await vs.notification(/Keygate: signed out alice@example\.com/);
      await vs.screenshot('15-signed-out-notification');
      const accounts = await eventually(async () => {
        const items = await vs.accountsMenu();
        assert.ok(!items.some((i) => i.includes('(Keygate)')), `Accounts menu: ${items.join(' | ')}`);
        return items;
      });
      assert.ok(!accounts.includes('alice@example.com (Keygate)'));
      await vs.accountsMenu('16-accounts-menu-signed-out');
      await listMcpServers(['Keygate: open'], '17-mcp-servers-signed-out');
      await vs.closeQuickInput();
    }));
});
