import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium, outputDir } from '../helpers/browser.ts';
import { codeServerInstall, eventually, VsCodeWindow } from '../helpers/code-server.ts';
import { colorTheme, screenshotSidebar, serverCard, sidebarFrame, signInFromPalette, startServerFromList, stateOf, stepRunner, textContrasts } from '../helpers/keygate-vscode.ts';

// `npm run try:vscode` as a newcomer runs it, from the README: one command
// builds the extension, starts the registry on the embedded demo and
// code-server with the extension, and prints the URL to open and the demo
// credentials. Then, in Chromium, what the README's "Use it from VS Code"
// describes: sign in with the printed credentials, the sidebar shows the
// demo gateway, a personal key turns the per-user server ready, the gateway
// starts in "MCP: List Servers"; Ctrl-C stops everything. The sidebar's
// pictures in docs/ come from this run, in the light and the dark theme
// (KEYGATE_UPDATE_DOCS=0 leaves docs/ alone); with the registry on its
// default port 8787 (when it is free) they show what `npm start` shows.

const root = fileURLToPath(new URL('../..', import.meta.url));
const shots = outputDir('try-vscode');
const STEP_TIMEOUT = 3 * 60_000;

let dir: string;
let child: ChildProcess;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let output = '';
let printed: { open: string; registry: string; username: string; password: string; prefix: string };
let browser: Browser;
let vs: VsCodeWindow;
let setupFailure: unknown;
const step = stepRunner(() => ({ vs, setupFailure }));
const personalKey = `demo-personal-${randomBytes(6).toString('hex')}`;

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** Whether anything accepts connections at `url`. */
async function answers(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
}

describe('npm run try:vscode: Keygate in VS Code in one command', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    try {
      codeServerInstall();
      dir = mkdtempSync(join(tmpdir(), 'keygate-try-'));
      const port = (await portIsFree(8787)) ? 8787 : 0;
      // Its own process group, as in a terminal: Ctrl-C there signals the whole group.
      child = spawn('npm', ['run', 'try:vscode', '--', '--port', String(port), '--vscode-port', '0', '--data-dir', dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      await eventually(
        () => {
          if (child.exitCode !== null) throw new Error(`try:vscode exited (${child.exitCode}):\n${output}`);
          assert.match(output, /Ctrl-C stops code-server and the registry/);
        },
        { timeoutMs: 8 * 60_000, intervalMs: 500, message: 'try:vscode says it is ready' },
      );
      const field = (name: string) => new RegExp(`^  ${name}\\s+(.+)$`, 'm').exec(output)?.[1]?.trim() ?? '';
      printed = {
        open: field('open'),
        registry: field('registry'),
        username: field('sign in as'),
        password: field('password'),
        prefix: /any key starting with (\S+)/.exec(field('personal key'))?.[1] ?? '',
      };
      browser = await launchChromium();
      vs = await VsCodeWindow.open(browser, { workbenchUrl: printed.open }, shots);
    } catch (err) {
      setupFailure = err;
    }
  });

  after(async () => {
    await vs?.close().catch(() => undefined);
    await browser?.close();
    if (child && child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('it prints the URL to open, the registry and the demo credentials', { timeout: STEP_TIMEOUT }, () =>
    step('printed', async () => {
      assert.match(printed.open, /^http:\/\/127\.0\.0\.1:\d+\/\?folder=/);
      assert.match(printed.registry, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(printed.username, 'demo');
      assert.match(printed.password, /^[A-Za-z0-9_-]{16}$/);
      assert.equal(printed.prefix, 'demo-personal-');
      assert.deepEqual(await (await fetch(`${printed.registry}/healthz`)).json(), { status: 'ok' });
      await vs.screenshot('01-workbench');
    }));

  test('signing in with the printed credentials: the sidebar lists the demo gateway, "demo" shared and ready, "personal" needing a key', { timeout: STEP_TIMEOUT }, () =>
    step('sign-in', async () => {
      await vs.runCommand('Keygate: Open Sidebar');
      const frame = await sidebarFrame(vs);
      await frame.getByRole('button', { name: 'Sign In', exact: true }).waitFor();
      assert.equal(await frame.locator('code.registry').innerText(), new URL(printed.registry).host, 'the extension was pointed at the registry it started');
      await signInFromPalette(vs, { url: new URL(printed.open).origin }, printed.registry, { username: printed.username, password: printed.password }, {
        allow: '02-allow',
        openExternal: '03-open-external',
        login: '04-login',
        consent: '05-consent',
        callback: '06-callback',
      });
      await vs.notification(/Keygate: signed in as/);
      await frame.getByRole('heading', { name: /Demo gateway/ }).waitFor();
      assert.equal(await stateOf(frame, 'demo', 'demo'), 'ready');
      assert.equal(await stateOf(frame, 'demo', 'personal'), 'needs_credentials');
      assert.equal(await frame.getByRole('button', { name: 'Refresh', exact: true }).count(), 0, 'refreshing is the title bar\'s action, not a second button');
    }));

  test('a personal key turns "personal" ready; the sidebar in the light and dark themes, every text readable (WCAG AA)', { timeout: STEP_TIMEOUT }, () =>
    step('personal-key', async () => {
      const frame = await sidebarFrame(vs);
      const card = serverCard(frame, 'demo', 'personal');
      await card.getByLabel('Personal API key').fill(personalKey);
      await card.getByRole('button', { name: 'Save' }).click();
      await eventually(async () => assert.equal(await stateOf(frame, 'demo', 'personal'), 'ready'), { timeoutMs: 30_000, message: 'the personal server turns ready' });
      const saved = card.locator('.result.ok');
      await saved.waitFor();
      assert.match(await saved.innerText(), /^Saved\./);
      // Each thing said once: whose identity it is and who may use it.
      assert.equal((await card.locator('.identity').innerText()).trim(), 'Identity: yours (private)');

      const texts = '.result, .badge, .identity, .upstream, .muted, h2, h3, .who, code.registry, button';
      for (const [theme, file] of [
        ['Light Modern', 'sidebar-light'],
        ['Dark Modern', 'sidebar-dark'],
      ] as const) {
        await colorTheme(vs, theme);
        await new Promise((r) => setTimeout(r, 1000));
        const low = (await textContrasts(frame, texts)).filter((c) => c.ratio < 4.5);
        assert.deepEqual(low, [], `text below WCAG AA (4.5:1) in ${theme}`);
        const picture = await screenshotSidebar(vs, join(shots, `${file}.png`));
        if (process.env.KEYGATE_UPDATE_DOCS !== '0' && new URL(printed.registry).port === '8787') copyFileSync(picture, join(root, 'docs', `${file}.png`));
      }
      await colorTheme(vs, 'Light Modern');
    }));

  test('"MCP: List Servers" offers "Keygate: Demo gateway", and it starts', { timeout: STEP_TIMEOUT }, () =>
    step('mcp', async () => {
      await startServerFromList(vs, 'Keygate: Demo gateway', { running: '07-mcp-running' });
    }));

  test('Ctrl-C stops code-server and the registry', { timeout: STEP_TIMEOUT }, () =>
    step('ctrl-c', async () => {
      const editor = new URL(printed.open).origin;
      await vs.close();
      process.kill(-child.pid!, 'SIGINT');
      // npm itself ends by the signal, as after any Ctrl-C; what it ran stops both servers.
      const end = await exited;
      assert.ok(end.code === 0 || end.signal === 'SIGINT', `npm ended with ${JSON.stringify(end)}`);
      await eventually(async () => assert.match(output, /Stopping code-server and the registry/), { timeoutMs: 10_000 });
      await eventually(async () => assert.equal(await answers(`${printed.registry}/healthz`), false, 'the registry is stopped'), { timeoutMs: 20_000 });
      await eventually(async () => assert.equal(await answers(editor), false, 'code-server is stopped'), { timeoutMs: 20_000 });
    }));
});
