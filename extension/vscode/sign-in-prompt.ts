import * as vscode from 'vscode';
import { COMMANDS } from '../contributions.ts';

// When the registry stops accepting the session (a revoked token, a refused
// refresh), the person is asked once to sign in again, not on every request
// that notices: the prompt stays quiet until the next successful sign-in.

export class SignInPrompt {
  private shown = false;

  async show(registry: string | undefined): Promise<void> {
    if (this.shown) return;
    this.shown = true;
    const where = registry ? ` at ${new URL(registry).host}` : '';
    const answer = await vscode.window.showWarningMessage(`Keygate: your session${where} has ended. Sign in again to keep using your gateways.`, 'Sign In');
    if (answer === 'Sign In') await vscode.commands.executeCommand(COMMANDS.signIn);
  }

  /** Signed in again: the next ended session may prompt. */
  reset(): void {
    this.shown = false;
  }
}
