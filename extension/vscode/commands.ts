import * as vscode from 'vscode';
import { WANTED_SCOPES } from '../auth/oauth-flow.ts';
import type { KeygateAuthProvider } from '../auth/provider.ts';
import { formatAudit } from '../audit.ts';
import { AUDIT_LANGUAGE, AUDIT_SCHEME, COMMANDS, PROVIDER_ID, SIDEBAR_VIEW_ID } from '../contributions.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { MeClient } from '../me-client.ts';
import { cursorConfig, TOKEN_ENV } from '../mcp/cursor.ts';
import type { GatewayDefinitionProvider } from '../mcp/gateway-provider.ts';
import { DEFAULT_REGISTRY_URL, isLoopbackHttp, parseRegistryUrl, registryUrlProblem } from '../registry-url.ts';
import type { SidebarController } from '../sidebar/controller.ts';
import type { RegistrySetting } from './registry-setting.ts';
import type { SidebarViewProvider } from './sidebar-view.ts';

// VS Code adapter: the palette commands (category "Keygate" in package.json).

export interface CommandDeps {
  auth: KeygateAuthProvider;
  setting: RegistrySetting;
  sidebar: SidebarController;
  sidebarView: SidebarViewProvider;
  gateways: GatewayDefinitionProvider;
  /** The audit documents opened so far, by URI (the read-only content provider serves them). */
  auditDocuments: Map<string, string>;
  auditChanged: vscode.EventEmitter<vscode.Uri>;
  log: Logger;
}

/** Errors from createSession cross VS Code's RPC as plain Errors that keep their name. */
function isCancellation(err: unknown): boolean {
  return err instanceof Error && (err.name === 'SignInCancelledError' || err.name === 'Canceled' || /cancel/i.test(err.message));
}

/** The registry did not answer, could not be trusted, or answered that it is not healthy (the class names survive VS Code's RPC). */
function isRegistryDown(err: unknown): boolean {
  return err instanceof Error && (err.name === 'RegistryUnreachableError' || err.name === 'RegistryTlsError' || (err.name === 'RegistryHttpError' && /\/healthz/.test(err.message)));
}

async function signIn(deps: CommandDeps): Promise<void> {
  const { log } = deps;
  try {
    // Through vscode.authentication, so VS Code records that this extension may use the account.
    const session = await vscode.authentication.getSession(PROVIDER_ID, [...WANTED_SCOPES], { createIfNone: true });
    void vscode.window.showInformationMessage(`Keygate: signed in as ${session.account.label}.`);
  } catch (err) {
    if (isCancellation(err)) return;
    log.error('sign-in failed', err);
    if (!isRegistryDown(err)) {
      void vscode.window.showErrorMessage(`Keygate: sign-in failed: ${describeError(err)}`);
      return;
    }
    // Checked before the browser opens: say so, with the URL and the ways on.
    const way = (err as Error).name === 'RegistryTlsError' ? 'Trust its certificate (or fix it)' : 'Start it';
    const answer = await vscode.window.showErrorMessage(
      `Keygate cannot reach the registry: ${describeError(err)}. ${way}, or choose another registry.`,
      'Retry',
      'Select Registry',
    );
    if (answer === 'Retry') await signIn(deps);
    else if (answer === 'Select Registry') await selectRegistry(deps);
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

async function openSidebar(): Promise<void> {
  await vscode.commands.executeCommand(`${SIDEBAR_VIEW_ID}.focus`);
}

async function refresh({ sidebar, gateways }: CommandDeps): Promise<void> {
  await sidebar.refresh();
  gateways.refresh();
}

interface ServerItem extends vscode.QuickPickItem {
  gateway: string;
  server: string;
  oauth: boolean;
}

/** Pick a per-user server; OAuth ones open the browser, the others open their form in the sidebar. */
async function connectIdentity({ sidebar, sidebarView }: CommandDeps): Promise<void> {
  if (!sidebar.view.account) await sidebar.refresh();
  if (!sidebar.view.account) {
    const answer = await vscode.window.showInformationMessage('Keygate: sign in first to connect your identities.', 'Sign In');
    if (answer === 'Sign In') await vscode.commands.executeCommand(COMMANDS.signIn);
    return;
  }
  const items: ServerItem[] = sidebar.view.gateways.flatMap((g) =>
    g.servers
      .filter((s) => s.scheme === 'per_user' && s.input !== 'none')
      .map((s) => ({ label: `${g.name}: ${s.server}`, description: s.state.replace(/_/g, ' '), detail: s.upstreamName, gateway: s.gateway, server: s.server, oauth: s.input === 'oauth' })),
  );
  if (!items.length) {
    void vscode.window.showInformationMessage('Keygate: none of your gateways has a server that takes your own identity.');
    return;
  }
  // Those still waiting for the person first.
  items.sort((a, b) => Number(b.description !== 'ready') - Number(a.description !== 'ready'));
  const picked = await vscode.window.showQuickPick(items, { title: 'Keygate: Connect an Identity', placeHolder: 'Which server do you want to connect?' });
  if (!picked) return;
  if (picked.oauth) {
    const answer = await sidebar.handle({ type: 'connect', gateway: picked.gateway, server: picked.server });
    if (answer?.type === 'result') void (answer.ok ? vscode.window.showInformationMessage(`Keygate: ${answer.message}`) : vscode.window.showErrorMessage(`Keygate: ${answer.message}`));
    await sidebarView.reveal(picked.gateway, picked.server);
    return;
  }
  await sidebarView.reveal(picked.gateway, picked.server);
}

async function copyCursorConfig({ gateways, sidebar }: CommandDeps): Promise<void> {
  const definitions = await gateways.provide();
  if (!definitions.length) {
    void vscode.window.showWarningMessage('Keygate: no gateway to configure. Sign in first (Keygate: Sign In).');
    return;
  }
  const clientHeld = new Set(sidebar.view.gateways.filter((g) => g.servers.some((s) => s.storage === 'client')).map((g) => g.id));
  await vscode.env.clipboard.writeText(`${JSON.stringify(cursorConfig(definitions, clientHeld), null, 2)}\n`);
  void vscode.window.showInformationMessage(
    `Keygate: copied an mcp.json entry for ${definitions.length} gateway(s). It reads your access token from the environment variable ${TOKEN_ENV}; it holds no token itself.`,
  );
}

async function showAudit({ auth, setting, auditDocuments, auditChanged }: CommandDeps): Promise<void> {
  const registry = setting.current;
  const [session] = registry ? await auth.getSessions() : [];
  if (!registry || !session) {
    const answer = await vscode.window.showInformationMessage('Keygate: sign in to see the audit of your calls.', 'Sign In');
    if (answer === 'Sign In') await vscode.commands.executeCommand(COMMANDS.signIn);
    return;
  }
  const { entries, hasMore } = await new MeClient(registry).audit(session.accessToken);
  const uri = vscode.Uri.from({ scheme: AUDIT_SCHEME, path: `/${new URL(registry).host}/my-calls.log` });
  auditDocuments.set(uri.toString(), formatAudit(registry, session.account.label, entries, hasMore));
  auditChanged.fire(uri);
  const doc = await vscode.languages.setTextDocumentLanguage(await vscode.workspace.openTextDocument(uri), AUDIT_LANGUAGE);
  await vscode.window.showTextDocument(doc, { preview: true });
}

export function registerCommands(deps: CommandDeps): vscode.Disposable {
  const run = (name: string, command: (deps: CommandDeps) => Promise<void>) =>
    vscode.commands.registerCommand(name, () =>
      command(deps).catch((err: unknown) => {
        deps.log.error(`${name} failed`, err);
        deps.sidebar.callFailed(err);
        void vscode.window.showErrorMessage(`Keygate: ${describeError(err)}`);
      }),
    );
  return vscode.Disposable.from(
    run(COMMANDS.signIn, signIn),
    run(COMMANDS.signOut, signOut),
    run(COMMANDS.selectRegistry, selectRegistry),
    run(COMMANDS.openSidebar, openSidebar),
    run(COMMANDS.connectIdentity, connectIdentity),
    run(COMMANDS.copyCursorConfig, copyCursorConfig),
    run(COMMANDS.showAudit, showAudit),
    run(COMMANDS.refresh, refresh),
  );
}
