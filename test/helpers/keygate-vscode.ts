import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame } from 'playwright-core';
import { eventually, type CodeServer, type VsCodeWindow } from './code-server.ts';

// What a person does with Keygate in VS Code (code-server), shared by the
// VS Code e2e suites: sign in from the command palette through the
// registry's login page, and find the Keygate sidebar's webview.

const root = fileURLToPath(new URL('../..', import.meta.url));

/** `npm run package`: the extension as a user installs it; returns the .vsix. */
export function packageVsix(): string {
  const packaged = spawnSync('npm', ['run', 'package'], { cwd: root, encoding: 'utf8' });
  assert.equal(packaged.status, 0, `npm run package failed:\n${packaged.stdout}\n${packaged.stderr}`);
  const vsix = join(root, 'dist', 'keygate.vsix');
  assert.ok(existsSync(vsix));
  return vsix;
}

/**
 * The steps of a suite: each fails with the set-up's failure when there was
 * one (a failing hook would only cancel them), and on failure saves what the
 * window showed beside the step's screenshots.
 */
export function stepRunner(state: () => { vs: VsCodeWindow | undefined; setupFailure: unknown }) {
  return async (name: string, body: () => Promise<void>): Promise<void> => {
    if (state().setupFailure) throw state().setupFailure;
    try {
      await body();
    } catch (err) {
      await state().vs?.screenshot(`FAILED-${name}`).catch(() => undefined);
      throw err;
    }
  };
}

export interface SignInShots {
  allow: string;
  openExternal: string;
  login: string;
  consent: string;
  callback: string;
}

/**
 * "Keygate: Sign In": VS Code's "wants to sign in" dialog, the registry's
 * login page in a new tab (after VS Code's "open the external website?"
 * prompt), consent when the registry asks, and code-server's /callback page
 * handing the code back. Checks the authorization request on the way.
 */
export async function signInFromPalette(vs: VsCodeWindow, server: Pick<CodeServer, 'url'>, registry: string, person: { username: string; password: string }, shots: SignInShots): Promise<void> {
  await vs.runCommand('Keygate: Sign In');
  await vs.answerDialog(/wants to sign in using Keygate/, 'Allow', shots.allow);
  const { page: login, prompted } = await vs.externalPage(shots.openExternal);

  const authorize = new URL(login.url());
  // The registry's own address, not code-server's /proxy/PORT, with the redirect URI intact.
  assert.equal(authorize.origin, registry, `the sign-in page opened at ${login.url()}`);
  assert.ok(prompted, 'VS Code asked before opening the registry, a site other than its own');
  assert.equal(authorize.pathname, '/oauth/authorize');
  const redirect = new URL(authorize.searchParams.get('redirect_uri')!);
  assert.equal(redirect.origin, server.url);
  assert.match(redirect.pathname, /^\/stable-[0-9a-f]{40}\/callback$/);
  assert.equal(redirect.searchParams.get('vscode-scheme'), 'code-oss');
  assert.equal(redirect.searchParams.get('vscode-authority'), 'keygate.keygate');
  assert.equal(redirect.searchParams.get('vscode-path'), '/auth-callback');
  assert.equal(authorize.searchParams.get('client_id'), 'keygate-vscode');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');

  await login.locator('input[name=username]').waitFor();
  await vs.screenshot(shots.login, login);
  await login.fill('input[name=username]', person.username);
  await login.fill('input[name=password]', person.password);
  await login.click('button[type=submit]');
  // The registry may ask for consent before it redirects.
  const approve = login.locator('button[name=action][value=approve]');
  await Promise.race([login.waitForURL(/\/callback\?/), approve.waitFor()]);
  if (!/\/callback\?/.test(login.url())) {
    await vs.screenshot(shots.consent, login);
    await approve.click();
    await login.waitForURL(/\/callback\?/);
  }
  const landed = new URL(login.url());
  assert.equal(landed.origin, server.url);
  assert.ok(landed.searchParams.get('code'), 'the redirect carries a code');
  assert.equal(landed.searchParams.get('state'), authorize.searchParams.get('state'));
  assert.equal(landed.searchParams.get('iss'), registry);
  await login.locator('body').filter({ hasText: /close/i }).waitFor();
  await vs.screenshot(shots.callback, login);
  await login.close();
}

/**
 * The Keygate sidebar's page: VS Code draws a webview view in an iframe that
 * holds another iframe with our HTML; this finds the frame whose document is
 * ours (it has <main id="app">).
 */
export async function sidebarFrame(vs: VsCodeWindow): Promise<Frame> {
  return eventually(
    async () => {
      for (const frame of vs.page.frames()) {
        if (frame === vs.page.mainFrame()) continue;
        if (await frame.locator('main#app').count().catch(() => 0)) return frame;
      }
      throw new Error(`no Keygate sidebar among ${vs.page.frames().length} frames`);
    },
    { timeoutMs: 60_000, message: 'the Keygate sidebar webview' },
  );
}

/** A server's card in the sidebar (the list item named after the server). */
export function serverCard(frame: Frame, gateway: string, server: string) {
  return frame.locator(`li.server[data-key="${gateway}/${server}"]`);
}

/** A server's state as its badge says it (data-state). */
export async function stateOf(frame: Frame, gateway: string, name: string): Promise<string> {
  return (await serverCard(frame, gateway, name).locator('.badge.state').getAttribute('data-state')) ?? '';
}

/** "Preferences: Color Theme", type the theme's name, Enter: as a person switches themes. */
export async function colorTheme(vs: VsCodeWindow, label: string): Promise<void> {
  await vs.runCommand('Preferences: Color Theme');
  await vs.page.locator('.quick-input-widget input.input').fill(label);
  await vs.page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: label }).first().waitFor();
  await vs.page.keyboard.press('Enter');
  const dark = /dark/i.test(label);
  await eventually(async () => assert.equal((await vs.page.locator('.monaco-workbench.vs-dark').count()) > 0, dark), { timeoutMs: 30_000, message: `the ${label} theme applies` });
}

/** The side bar part of the workbench (the Keygate view when it is open), as a picture. */
export async function screenshotSidebar(vs: VsCodeWindow, path: string): Promise<string> {
  // The pointer away from the side bar, so no hover highlight is in the picture.
  await vs.page.mouse.move(900, 300);
  await vs.page.locator('.part.sidebar').screenshot({ path, animations: 'disabled' });
  return path;
}

/**
 * WCAG 2.x contrast of each element's text against the background it is
 * drawn on (the first ancestor with an opaque background), in the webview.
 */
export async function textContrasts(frame: Frame, selector: string): Promise<{ text: string; ratio: number }[]> {
  // tsx compiles the function below with esbuild's keepNames, which calls a __name helper the page lacks.
  await frame.evaluate('globalThis.__name ??= (f) => f');
  return frame.locator(selector).evaluateAll((elements) => {
    const parse = (c: string) => {
      const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(c);
      return m ? { r: +m[1]!, g: +m[2]!, b: +m[3]!, a: m[4] === undefined ? 1 : +m[4] } : undefined;
    };
    const luminance = ({ r, g, b }: { r: number; g: number; b: number }) => {
      const lin = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    };
    const background = (el: Element | null) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a === 1) return c;
      }
      // The webview's body is transparent over the side bar: VS Code passes that colour as a variable.
      const root = getComputedStyle(document.documentElement);
      const side = root.getPropertyValue('--vscode-sideBar-background').trim();
      const probe = document.createElement('div');
      probe.style.color = side || 'white';
      document.body.append(probe);
      const c = parse(getComputedStyle(probe).color)!;
      probe.remove();
      return c;
    };
    return elements.map((el) => {
      const fg = parse(getComputedStyle(el).color)!;
      const bg = background(el);
      const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a) as [number, number];
      return { text: (el.textContent ?? '').trim().slice(0, 40), ratio: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100 };
    });
  });
}

/**
 * "MCP: List Servers" until it offers `label` (the extension lists gateways
 * a moment after sign-in), pick it, "Start Server", and wait until the list
 * shows it Running. `listed` names a screenshot of the list before the start.
 */
export async function startServerFromList(vs: VsCodeWindow, label: string, shots: { listed?: string; running: string }): Promise<void> {
  await eventually(
    async () => {
      await vs.runCommand('MCP: List Servers');
      await eventually(async () => assert.ok((await vs.quickPickLabels()).some((l) => l.startsWith(label))), { timeoutMs: 10_000 });
    },
    { timeoutMs: 90_000, message: `"${label}" in "MCP: List Servers"` },
  );
  if (shots.listed) await vs.screenshot(shots.listed);
  await vs.pick(label);
  await vs.quickPickRow('Start Server').first().waitFor();
  await vs.pick('Start Server');
  await vs.runCommand('MCP: List Servers');
  const running = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, Running\\b`);
  await eventually(async () => assert.ok((await vs.quickPickLabels()).some((l) => running.test(l)), (await vs.quickPickLabels()).join(' | ')), {
    timeoutMs: 60_000,
    message: `${label} shows as Running`,
  });
  await vs.screenshot(shots.running);
  await vs.closeQuickInput();
}
