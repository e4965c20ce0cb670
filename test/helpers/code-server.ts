import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { requireInstall } from '../../scripts/code-server-install.mjs';
import { launchCodeServer, type RunningCodeServer } from '../../scripts/code-server-launch.ts';

// A real VS Code for the tests: code-server (installed outside the repository
// by scripts/setup-code-server.mjs) with a fresh user-data and extensions dir,
// opened in Debian's Chromium and driven through its own UI: the command
// palette, quick picks, notifications, dialogs and menus.

export { QUIET_SETTINGS } from '../../scripts/code-server-launch.ts';

/** Where setup-code-server.mjs put code-server; an Error that says to run it when it did not. */
export const codeServerInstall = () => requireInstall();

export interface CodeServer extends RunningCodeServer {
  /** The folder holding everything of this code-server (removed by stop()). */
  dir: string;
}

export interface CodeServerOptions {
  /** .vsix files to install before starting. */
  extensions: string[];
  /** User settings on top of QUIET_SETTINGS. */
  settings: Record<string, unknown>;
  startTimeoutMs?: number;
}

/**
 * Start code-server on a free loopback port with a fresh user-data dir,
 * extensions dir and empty workspace folder, the given extensions installed.
 */
export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-vscode-'));
  try {
    const running = await launchCodeServer({ ...options, dir, workspace: join(dir, 'workspace') });
    return {
      ...running,
      dir,
      async stop() {
        await running.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Poll `check` until it stops throwing (an assertion that becomes true), or throw its last error. */
export async function eventually<T>(check: () => Promise<T> | T, options: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) {
        if (options.message && err instanceof Error) err.message = `${options.message}: ${err.message}`;
        throw err;
      }
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 250));
  }
}

const cssString = (value: string) => JSON.stringify(value);

/**
 * The workbench in a browser tab, driven like a person would: F1 and the
 * command palette, clicks on quick-pick rows, dialog buttons and menus, found
 * by their accessible names.
 */
export class VsCodeWindow {
  readonly screenshots: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    private readonly shots: string,
  ) {}

  /** Open the workbench in a new browser context and wait until it is usable. */
  static async open(browser: Browser, server: Pick<CodeServer, 'workbenchUrl'>, shots: string): Promise<VsCodeWindow> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    context.setDefaultTimeout(60_000);
    const page = await context.newPage();
    await page.goto(server.workbenchUrl);
    await page.locator('.monaco-workbench').waitFor();
    // The status bar is drawn once the workbench has restored its parts.
    await page.locator('.part.statusbar').waitFor();
    await page.locator('.part.activitybar, .part.sidebar').first().waitFor();
    return new VsCodeWindow(context, page, shots);
  }

  /** Save a screenshot of the window (or of another page) as test-output/<suite>/<name>.png. */
  async screenshot(name: string, page: Page = this.page): Promise<string> {
    const path = join(this.shots, `${name}.png`);
    await page.screenshot({ path, animations: 'disabled' });
    this.screenshots.push(path);
    return path;
  }

  get quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  /** A row of the open quick pick whose accessible name is `label` (or starts with "`label`, "). */
  quickPickRow(label: string): Locator {
    const list = '.quick-input-widget .quick-input-list .monaco-list-row';
    return this.page.locator(`${list}[aria-label=${cssString(label)}], ${list}[aria-label^=${cssString(`${label}, `)}]`);
  }

  /** The accessible names of the open quick pick's rows (a server row reads "Keygate: team, Running, Keygate"). */
  async quickPickLabels(): Promise<string[]> {
    return this.page.locator('.quick-input-widget .quick-input-list .monaco-list-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /**
   * Open the command palette (F1), type the command's title and pick exactly
   * that command. Right after start-up an extension's commands may not be in
   * the palette yet (it lists what it knew when the text was typed), so a
   * person, and this, closes it and types again.
   */
  async runCommand(title: string, options: { timeoutMs?: number } = {}): Promise<void> {
    await eventually(
      async () => {
        await this.closeQuickInput();
        await this.page.locator('.monaco-workbench').focus();
        await this.page.keyboard.press('F1');
        const input = this.quickInput.locator('input.input');
        await input.waitFor({ state: 'visible', timeout: 5_000 });
        await input.fill(`>${title}`, { timeout: 5_000 });
        await this.quickPickRow(title).first().waitFor({ timeout: 10_000 });
        // A notification arriving now can take the focus and close the palette: then it is typed again.
        await this.quickPickRow(title).first().click({ timeout: 5_000 });
      },
      { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 500, message: `"${title}" in the command palette` },
    );
  }

  /** Pick the row `label` of the open quick pick. */
  async pick(label: string): Promise<void> {
    await this.quickPickRow(label).first().click();
  }

  async closeQuickInput(): Promise<void> {
    if (await this.quickInput.isVisible()) {
      await this.page.keyboard.press('Escape');
      await this.quickInput.waitFor({ state: 'hidden' });
    }
  }

  /** The modal dialog whose text matches `text` (VS Code's own dialogs, not browser ones). */
  dialog(text: RegExp): Locator {
    return this.page.locator('.monaco-dialog-box', { hasText: text });
  }

  /** Click the button named `name` in the dialog matching `text`, once it shows. */
  async answerDialog(text: RegExp, name: string, screenshot?: string): Promise<void> {
    const dialog = this.dialog(text);
    await dialog.waitFor();
    if (screenshot) await this.screenshot(screenshot);
    await dialog.getByRole('button', { name, exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  /** Wait for a notification toast whose text matches `text`; returns its accessible name. */
  async notification(text: RegExp): Promise<string> {
    const toast = this.page.locator('.notifications-toasts .monaco-list-row', { hasText: text }).first();
    await toast.waitFor();
    return (await toast.getAttribute('aria-label')) ?? (await toast.innerText());
  }

  /** Open the Accounts menu of the activity bar, read its entries, screenshot it, close it. */
  async accountsMenu(screenshot?: string): Promise<string[]> {
    await this.page.locator('.part.activitybar li.action-item[aria-label^="Accounts"]').click();
    const menu = this.page.locator('.monaco-menu');
    await menu.getByRole('menuitem').first().waitFor();
    const items = (await menu.getByRole('menuitem').allInnerTexts()).map((t) => t.trim()).filter(Boolean);
    if (screenshot) await this.screenshot(screenshot);
    await this.page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden' });
    return items;
  }

  /**
   * The visible lines of the output channel shown in the panel. Monaco draws
   * spaces as no-break spaces: match words with \s, not with " ".
   */
  outputPanel(): Locator {
    return this.page.locator('.part.panel .monaco-editor .view-lines');
  }

  /**
   * The tab the workbench opens for vscode.env.openExternal, after VS Code's
   * "open the external website?" prompt when it asks (it does not for links
   * to its own origin); `screenshot` names the prompt's screenshot.
   */
  async externalPage(screenshot: string): Promise<{ page: Page; prompted: boolean }> {
    const popup = this.context.waitForEvent('page');
    const prompt = this.dialog(/open the external website/);
    const prompting = prompt.waitFor().then(
      () => true,
      () => false,
    );
    const prompted = await Promise.race([popup.then(() => false), prompting]);
    if (prompted) {
      await this.screenshot(screenshot);
      await prompt.getByRole('button', { name: 'Open', exact: true }).click();
    }
    const page = await popup;
    await page.waitForLoadState('domcontentloaded');
    return { page, prompted };
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/** code-server's own output and VS Code's logs (the Keygate output channel, MCP servers, extension host), into a test's output folder. */
export function saveCodeServerLogs(server: CodeServer, shots: string): void {
  writeFileSync(join(shots, 'code-server.log'), server.log());
  rmSync(join(shots, 'vscode-logs'), { recursive: true, force: true });
  if (existsSync(join(server.userDataDir, 'logs'))) cpSync(join(server.userDataDir, 'logs'), join(shots, 'vscode-logs'), { recursive: true });
}
