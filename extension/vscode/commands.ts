import * as vscode from 'vscode';
import { WANTED_SCOPES } from '../auth/oauth-flow.ts';
import type { KeygateAuthProvider } from '../auth/provider.ts';
import { COMMANDS, PROVIDER_ID } from '../contributions.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_REGISTRY_URL, isLoopbackHttp, parseRegistryUrl, registryUrlProblem } from '../registry-url.ts';
import type { RegistrySetting } from './registry-setting.ts';

// VS Code adapter: the palette commands (category "Keygate" in package.json).

export interface CommandDeps {
  auth: KeygateAuthProvider;
  setting: RegistrySetting;
  log: Logger;
}

/** Errors from createSession cross VS Code's RPC as plain Errors that keep their name. */
function isCancellation(err: unknown): boolean {
  return err instanceof Error && (err.name === 'SignInCancelledError' || err.name === 'Canceled' || /cancel/i.test(err.message));
}

async function signIn({ log }: CommandDeps): Promise<void> {
  try {
    // Through vscode.authentication, so VS Code records that this extension may use the account.
    const session = await vscode.authentication.getSession(PROVIDER_ID, [...WANTED_SCOPES], { createIfNone: true });
    void vscode.window.showInformationMessage(`Keygate: signed in as ${session.account.label}.`);
  } catch (err) {
    if (isCancellation(err)) return;
    log.error('sign-in failed', err);
    void vscode.window.showErrorMessage(`Keygate: sign-in failed: ${describeError(err)}`);
  }
}

async function signOut({ auth }: CommandDeps): Promise<void> {
  const account = await auth.signOut();
  void vscode.window.showInformationMessage(account ? `Keygate: signed out ${account.label}.` : 'Keygate: not signed in.');
}

interface RegistryItem extends vscode.QuickPickItem {
  url?: string;
}

async function selectRegistry({ auth, setting, log }: CommandDeps): Promise<void> {
  const current = setting.current;
  const items: RegistryItem[] = [];
  if (current) items.push({ label: current, description: 'current', url: current });
  if (current !== DEFAULT_REGISTRY_URL) items.push({ label: DEFAULT_REGISTRY_URL, description: 'default (a registry on this machine)', url: DEFAULT_REGISTRY_URL });
  items.push({ label: '$(edit) Enter a registry URL…' });
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Keygate: Select Registry',
    placeHolder: `Current registry: ${current ?? `${setting.raw} (invalid)`}`,
  });
  if (!picked) return;
  let raw = picked.url;
  if (raw === undefined) {
    raw = await vscode.window.showInputBox({
      title: 'Keygate: Select Registry',
      prompt: `The registry's http(s) URL. Current: ${current ?? setting.raw}`,
      value: current ?? setting.raw,
      placeHolder: 'https://keygate.example.com',
      validateInput: registryUrlProblem,
    });
    if (raw === undefined) return;
  }
  const registry = parseRegistryUrl(raw);
  if (registry === current) return;
  if (new URL(registry).protocol === 'http:' && !isLoopbackHttp(registry)) {
    const proceed = await vscode.window.showWarningMessage(
      `${registry} uses plain http on a network address: your Keygate tokens would travel unencrypted. Use it anyway?`,
      { modal: true },
      'Use http',
    );
    if (proceed !== 'Use http') return;
  }
  const account = await auth.currentAccount();
  if (current && account) {
    const answer = await vscode.window.showWarningMessage(`Switching to ${registry} signs ${account.label} out of ${current}.`, { modal: true }, 'Switch');
    if (answer !== 'Switch') return;
  }
  // The setting's change handler signs out of the previous registry.
  await setting.update(registry);
  log.info(`registry set to ${registry}`);
}

export function registerCommands(deps: CommandDeps): vscode.Disposable {
  const run = (name: string, command: (deps: CommandDeps) => Promise<void>) =>
    vscode.commands.registerCommand(name, () =>
      command(deps).catch((err: unknown) => {
        deps.log.error(`${name} failed`, err);
        void vscode.window.showErrorMessage(`Keygate: ${describeError(err)}`);
      }),
    );
  return vscode.Disposable.from(
    run(COMMANDS.signIn, signIn),
    run(COMMANDS.signOut, signOut),
    run(COMMANDS.selectRegistry, selectRegistry),
  );
}
