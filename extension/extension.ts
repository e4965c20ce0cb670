import * as vscode from 'vscode';
import { AuthCallbacks } from './auth/callbacks.ts';
import { Keychain } from './auth/keychain.ts';
import { flowsByRegistry } from './auth/oauth-flow.ts';
import { KeygateAuthProvider } from './auth/provider.ts';
import { Refresher } from './auth/refresher.ts';
import { SessionStore } from './auth/session-store.ts';
import { signIn } from './auth/sign-in.ts';
import { PROVIDER_ID, PROVIDER_LABEL } from './contributions.ts';
import { Logger } from './log.ts';
import { GatewayDefinitionProvider } from './mcp/gateway-provider.ts';
import { RegistryClient } from './registry-client.ts';
import { registerCommands } from './vscode/commands.ts';
import { registerMcpProvider, vscodeSessions } from './vscode/mcp-provider.ts';
import { RegistrySetting } from './vscode/registry-setting.ts';
import { KeygateUriHandler, VsCodeSignInUi } from './vscode/sign-in-ui.ts';

// activate() only wires: every long-lived object is a Disposable handed to
// context.subscriptions; the logic lives behind small interfaces elsewhere.

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Keygate', { log: true });
  const log = new Logger(output);
  const setting = new RegistrySetting(log);
  const registry = () => setting.current;
  const flowFor = flowsByRegistry({ onSecret: (value) => log.addSecret(value) });
  const callbacks = new AuthCallbacks(log);
  const ui = new VsCodeSignInUi(context.extension.id);
  const store = new SessionStore(new Keychain(context.secrets, log), log);
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
    signIn: (url, signal) => signIn({ flow: flowFor(url), registryClient: new RegistryClient(url), callbacks, ui, log }, signal),
  });
  const gateways = new GatewayDefinitionProvider({ registry, client: (url) => new RegistryClient(url), sessions: vscodeSessions, log });

  context.subscriptions.push(
    output,
    setting,
    store,
    auth,
    gateways,
    vscode.window.registerUriHandler(new KeygateUriHandler(callbacks)),
    vscode.authentication.registerAuthenticationProvider(PROVIDER_ID, PROVIDER_LABEL, auth, { supportsMultipleAccounts: false }),
    registerMcpProvider(gateways),
    registerCommands({ auth, setting, log }),
    auth.onDidChangeAccount(() => gateways.refresh()),
    setting.onDidChange(({ previous }) => auth.registryChanged(previous).finally(() => gateways.refresh())),
  );
  log.info(`Keygate ${context.extension.packageJSON.version ?? ''} active; registry ${setting.current ?? '(invalid setting)'}`);
}

export function deactivate(): void {}
