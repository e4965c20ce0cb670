import * as vscode from 'vscode';
import { parseMessage, toExtension, type ToWebview } from '../../webview/protocol.ts';
import { SIDEBAR_VIEW_ID } from '../contributions.ts';
import type { Logger } from '../log.ts';
import type { SidebarController } from '../sidebar/controller.ts';
import { newNonce, sidebarHtml } from '../sidebar/html.ts';

// VS Code adapter: the `keygate.sidebar` webview view (activity-bar container
// "Keygate"). It renders the shell with a fresh nonce each time VS Code asks,
// validates every message from the page, hands it to the controller, and
// posts the view model whenever it changes.

export { SIDEBAR_VIEW_ID };

export class SidebarViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  /** The page has loaded its script and asked for the view. */
  private ready = false;
  private pendingReveal: ToWebview | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly controller: SidebarController,
    private readonly log: Logger,
  ) {
    this.subscriptions.push(controller.onDidChangeView((view) => void this.post({ type: 'view', view })) as vscode.Disposable);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    // Forms on: without them the sandbox never fires a form's submit event (the script handles it; nothing navigates).
    view.webview.options = { enableScripts: true, enableForms: true, localResourceRoots: [dist] };
    view.webview.html = sidebarHtml({
      cspSource: view.webview.cspSource,
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.css')).toString(),
      nonce: newNonce(),
    });
    this.subscriptions.push(
      view.webview.onDidReceiveMessage(async (data: unknown) => {
        const parsed = parseMessage(toExtension, data);
        if (!parsed.ok) {
          this.log.warn(`ignored a message from the sidebar: ${parsed.problem}`);
          return;
        }
        try {
          const answer = await this.controller.handle(parsed.message);
          if (answer) await this.post(answer);
          if (parsed.message.type === 'ready') {
            this.ready = true;
            if (this.pendingReveal) await this.post(this.pendingReveal);
            this.pendingReveal = undefined;
          }
        } catch (err) {
          this.log.error(`the sidebar's ${parsed.message.type} failed`, err);
        }
      }),
      view.onDidChangeVisibility(() => {
        if (view.visible) void this.controller.refresh();
      }),
      view.onDidDispose(() => {
        if (this.view === view) {
          this.view = undefined;
          this.ready = false;
        }
      }),
    );
  }

  /** Show the sidebar and open one server's form (or focus its Connect button). */
  async reveal(gateway: string, server: string): Promise<void> {
    const message: ToWebview = { type: 'reveal', gateway, server };
    await vscode.commands.executeCommand(`${SIDEBAR_VIEW_ID}.focus`);
    if (this.view && this.ready) await this.post(message);
    else this.pendingReveal = message;
  }

  private async post(message: ToWebview): Promise<void> {
    await this.view?.webview.postMessage(message);
  }

  dispose(): void {
    for (const d of this.subscriptions.splice(0)) d.dispose();
  }
}
