import * as vscode from 'vscode';
import { keepOffEditorPortForwarding } from './auth/browser-url.ts';
import { AuthCallbacks } from './auth/callbacks.ts';
import { Keychain } from './auth/keychain.ts';
import { flowsByRegistry } from './auth/oauth-flow.ts';
import { KeygateAuthProvider } from './auth/provider.ts';
import { Refresher } from './auth/refresher.ts';
import { SessionStore } from './auth/session-store.ts';
import { signIn } from './auth/sign-in.ts';
import { AUDIT_SCHEME, COMMANDS, PROVIDER_ID, PROVIDER_LABEL, SIDEBAR_VIEW_ID } from './contributions.ts';
import { ClientCredentialStore } from './credentials/client-store.ts';
import { Logger } from './log.ts';
import { MeClient } from './me-client.ts';
import { GatewayDefinitionProvider } from './mcp/gateway-provider.ts';
import { RegistryClient } from './registry-client.ts';
import { SidebarController } from './sidebar/controller.ts';
import { realScheduler } from './sidebar/schedule.ts';
import { registerCommands } from './vscode/commands.ts';
import { cursorMcpApi, registerWithCursor } from './vscode/cursor.ts';
import { registerMcpProvider, vscodeSessions } from './vscode/mcp-provider.ts';
import { RegistrySetting } from './vscode/registry-setting.ts';
import { SidebarViewProvider } from './vscode/sidebar-view.ts';
import { KeygateUriHandler, VsCodeSignInUi } from './vscode/sign-in-ui.ts';
import { SignInPrompt } from './vscode/sign-in-prompt.ts';
import { registerStatusBar } from './vscode/status-bar.ts';

// activate() only wires: every long-lived object is a Disposable handed to
// context.subscriptions; the logic lives behind small interfaces elsewhere.

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Keygate', { log: true });
  const log = new Logger(output);
  const setting = new RegistrySetting(log);
  const registry = () => setting.current;
  const flowFor = flowsByRegistry({ onSecret: (value) => log.addSecret(value) });
  // Any failed call to the registry makes the sidebar check it at once (declared below; called only later).
  const registryFailed = (err: unknown) => sidebar.callFailed(err);
  const callbacks = new AuthCallbacks(log);
  const ui = new VsCodeSignInUi(context.extension.id);
  const keychain = new Keychain(context.secrets, log);
  const store = new SessionStore(keychain, log);
  const clientValues = new ClientCredentialStore(keychain, log);
  const refresher = new Refresher({
    store,
    refresh: (session, refreshToken) => flowFor(session.registry).refreshTokenGrant(refreshToken, session.scopes),
    log,
  });
  const auth = new KeygateAuthProvider({
    registry,
    store,
    refresher,
    ui,
    log,
    failed: registryFailed,
    signIn: (url, signal) => signIn({ flow: flowFor(url), registryClient: new RegistryClient(url), callbacks, ui, log }, signal),
  });
  const gateways = new GatewayDefinitionProvider({
    registry,
    client: (url) => new RegistryClient(url),
    sessions: vscodeSessions,
    clientCredentials: (url, gatewayId) => clientValues.header(url, gatewayId),
    failed: registryFailed,
    log,
  });
  const sidebar = new SidebarController({
    registry,
    session: {
      current: async () => {
        const [session] = await auth.getSessions();
        return session && { accessToken: session.accessToken, account: session.account.label };
      },
      replace: async (url, token) => (await refresher.replace(url, token))?.accessToken,
    },
    me: (url) => new MeClient(url),
    health: (url) => new RegistryClient(url).health(),
    clientValues,
    // In a browser-hosted editor a loopback registry's connect page must keep its own address (see browser-url.ts).
    openExternal: async (url) => vscode.env.openExternal((vscode.env.uiKind === vscode.UIKind.Web ? keepOffEditorPortForwarding(url) : url) as unknown as vscode.Uri),
    signIn: async () => void (await vscode.commands.executeCommand(COMMANDS.signIn)),
    selectRegistry: async () => void (await vscode.commands.executeCommand(COMMANDS.selectRegistry)),
    scheduler: realScheduler,
    log,
  });
  const sidebarView = new SidebarViewProvider(context.extensionUri, sidebar, log);
  const prompt = new SignInPrompt();
  const auditDocuments = new Map<string, string>();
  const auditChanged = new vscode.EventEmitter<vscode.Uri>();
  const cursor = cursorMcpApi();

  context.subscriptions.push(
    output,
    setting,
    auth,
    gateways,
    sidebar,
    sidebarView,
    auditChanged,
    vscode.window.registerUriHandler(new KeygateUriHandler(callbacks)),
    vscode.authentication.registerAuthenticationProvider(PROVIDER_ID, PROVIDER_LABEL, auth, { supportsMultipleAccounts: false }),
    registerMcpProvider(gateways),
    vscode.window.registerWebviewViewProvider(SIDEBAR_VIEW_ID, sidebarView),
    vscode.workspace.registerTextDocumentContentProvider(AUDIT_SCHEME, { onDidChange: auditChanged.event, provideTextDocumentContent: (uri) => auditDocuments.get(uri.toString()) ?? '' }),
    registerCommands({ auth, setting, sidebar, sidebarView, gateways, auditDocuments, auditChanged, log }),
    registerStatusBar(sidebar),
    // A new token (sign-in, refresh, another window) or account: MCP servers restart with fresh headers.
    auth.onDidChangeSessions(() => gateways.bump()),
    auth.onDidChangeAccount(async () => {
      if (await auth.currentAccount()) {
        prompt.reset();
        await sidebar.signedIn();
      } else {
        await sidebar.reset();
      }
    }),
    // Who serves which server changed: MCP servers restart and read their tools again.
    sidebar.onDidChangeIdentities(() => gateways.bump()),
    // The registry is back after an outage or restarted: its MCP sessions may be gone, so VS Code reconnects.
    sidebar.onDidReconnect(() => gateways.bump()),
    sidebar.onDidEndSession(() => void prompt.show(registry())),
    refresher.onSessionEnded(() => {
      sidebar.ended();
      void prompt.show(registry());
    }),
    // Another window saved or removed client-held credentials.
    clientValues.onDidChange((url) => {
      if (url !== registry()) return;
      gateways.bump();
      void sidebar.refresh();
    }),
    vscode.window.onDidChangeWindowState((state) => {
      if (state.focused) sidebar.focused();
    }),
    setting.onDidChange(({ previous }) =>
      auth.registryChanged(previous).finally(() => {
        gateways.refresh();
        void sidebar.reset();
      }),
    ),
  );
  if (cursor) context.subscriptions.push(registerWithCursor(cursor, gateways, async () => (await auth.currentAccount()) !== undefined, log));
  void sidebar.refresh();
  log.info(`Keygate ${context.extension.packageJSON.version ?? ''} active; registry ${setting.current ?? '(invalid setting)'}${cursor ? '; Cursor MCP API found' : ''}`);
}

export function deactivate(): void {}
