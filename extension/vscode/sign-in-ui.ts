import * as vscode from 'vscode';
import { CALLBACK_PATH, type AuthCallbacks } from '../auth/callbacks.ts';
import { keepOffEditorPortForwarding } from '../auth/browser-url.ts';
import type { SignInUi } from '../auth/sign-in.ts';

// VS Code adapter: what a sign-in needs from the editor.

export class VsCodeSignInUi implements SignInUi {
  constructor(
    /** The extension id, `keygate.keygate`: the authority VS Code routes the redirect by. */
    private readonly extensionId: string,
  ) {}

  /**
   * `${uriScheme}://keygate.keygate/auth-callback` on the desktop (vscode,
   * cursor, ...); in a browser-hosted editor (code-server) asExternalUri turns
   * it into the editor's own /callback page. Asked once per attempt (the web
   * form carries a per-call request id) and serialized with toString(true):
   * toString() would re-encode the query.
   */
  async redirectUri(): Promise<string> {
    const callback = vscode.Uri.parse(`${vscode.env.uriScheme}://${this.extensionId}${CALLBACK_PATH}`);
    return (await vscode.env.asExternalUri(callback)).toString(true);
  }

  openBrowser(url: string): Promise<boolean> {
    // In a browser-hosted editor (code-server) a loopback registry would be
    // routed through the editor's /proxy/PORT and its redirect_uri mangled;
    // see browser-url.ts. The desktop keeps its own port forwarding.
    const target = vscode.env.uiKind === vscode.UIKind.Web ? keepOffEditorPortForwarding(url) : url;
    // Passed as a string on purpose: the extension host then opens it as is.
    // A vscode.Uri would be decoded and re-encoded, which breaks a redirect_uri
    // that carries its own query (the code-server shape).
    return Promise.resolve(vscode.env.openExternal(target as unknown as vscode.Uri));
  }

  withProgress<T>(title: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (_progress, token) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        try {
          return await task(controller.signal);
        } finally {
          subscription.dispose();
        }
      }),
    );
  }
}

/** The extension's one UriHandler (VS Code allows one per extension): redirects go to the waiting sign-in. */
export class KeygateUriHandler implements vscode.UriHandler {
  constructor(private readonly callbacks: AuthCallbacks) {}

  handleUri(uri: vscode.Uri): void {
    this.callbacks.handleUri(uri.path, uri.query);
  }
}
