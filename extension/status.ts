import type { ViewModel } from '../webview/protocol.ts';

// The status-bar item: who is signed in where, at a glance, and what a click
// does. Derived from the sidebar's view model, so both always agree.

export interface StatusItem {
  text: string;
  tooltip: string;
  /** The command a click runs. */
  command: 'keygate.signIn' | 'keygate.openSidebar' | 'keygate.selectRegistry';
  warning: boolean;
}

export function statusItem(view: ViewModel): StatusItem {
  const host = view.registry ? new URL(view.registry).host : undefined;
  switch (view.status) {
    case 'no_registry':
      return { text: '$(key) Keygate: no registry', tooltip: 'Keygate: choose a registry', command: 'keygate.selectRegistry', warning: true };
    case 'signed_out':
      return { text: '$(key) Keygate: Sign In', tooltip: `Keygate: sign in to ${host}`, command: 'keygate.signIn', warning: false };
    case 'session_ended':
      return { text: '$(key) Keygate: Sign In', tooltip: `Keygate: your session at ${host} ended; sign in again`, command: 'keygate.signIn', warning: true };
    case 'registry_unreachable':
      return { text: '$(debug-disconnect) Keygate: offline', tooltip: `Keygate: ${host} does not answer; retrying`, command: 'keygate.openSidebar', warning: true };
    case 'loading':
    case 'ready': {
      const waiting = view.gateways.flatMap((g) => g.servers).filter((s) => s.state === 'needs_credentials' || s.state === 'needs_authorization').length;
      const tooltip = `Keygate: signed in to ${host} as ${view.account}${waiting ? `; ${waiting} server(s) need you to connect` : ''}`;
      return { text: `$(key) ${view.account}${waiting ? ` $(warning) ${waiting}` : ''}`, tooltip, command: 'keygate.openSidebar', warning: false };
    }
  }
}
