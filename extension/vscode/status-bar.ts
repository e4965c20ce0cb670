import * as vscode from 'vscode';
import type { SidebarController } from '../sidebar/controller.ts';
import { statusItem } from '../status.ts';

// VS Code adapter: the status-bar item showing the sign-in state.

export function registerStatusBar(controller: SidebarController): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('keygate.status', vscode.StatusBarAlignment.Left, 50);
  item.name = 'Keygate';
  const update = () => {
    const s = statusItem(controller.view);
    item.text = s.text;
    item.tooltip = s.tooltip;
    item.command = s.command;
    item.backgroundColor = s.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    item.accessibilityInformation = { label: s.tooltip };
    void vscode.commands.executeCommand('setContext', 'keygate.signedIn', controller.view.account !== undefined);
  };
  update();
  item.show();
  const subscription = controller.onDidChangeView(update);
  return vscode.Disposable.from(item, subscription as vscode.Disposable);
}
