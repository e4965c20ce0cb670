// The ids the manifest (package.json `contributes`) and the code must agree
// on, in one place; test/unit/extension-manifest.test.ts holds them together.

export { PROVIDER_ID, PROVIDER_LABEL } from './auth/provider.ts';

export const MCP_PROVIDER_ID = 'keygate.gateways';
export const MCP_PROVIDER_LABEL = 'Keygate';

export const COMMANDS = {
  signIn: 'keygate.signIn',
  signOut: 'keygate.signOut',
  selectRegistry: 'keygate.selectRegistry',
  openSidebar: 'keygate.openSidebar',
  connectIdentity: 'keygate.connectIdentity',
  copyCursorConfig: 'keygate.copyCursorConfig',
  showAudit: 'keygate.showAudit',
  refresh: 'keygate.refresh',
} as const;

/** Palette titles (category "Keygate"), as package.json contributes them. */
export const COMMAND_TITLES: Record<(typeof COMMANDS)[keyof typeof COMMANDS], string> = {
  'keygate.signIn': 'Sign In',
  'keygate.signOut': 'Sign Out',
  'keygate.selectRegistry': 'Select Registry',
  'keygate.openSidebar': 'Open Sidebar',
  'keygate.connectIdentity': 'Connect an Identity',
  'keygate.copyCursorConfig': 'Copy Cursor Configuration',
  'keygate.showAudit': 'Show the Audit of My Calls',
  'keygate.refresh': 'Refresh',
};

export const VIEW_CONTAINER_ID = 'keygate';
export const SIDEBAR_VIEW_ID = 'keygate.sidebar';
export const WALKTHROUGH_ID = 'keygate.gettingStarted';
/** A read-only document scheme: "Keygate: Show the Audit of My Calls" opens keygate-audit:/… */
export const AUDIT_SCHEME = 'keygate-audit';
/** The audit document's language: its configurationDefaults turn word wrap on, so a narrow editor cuts nothing off. */
export const AUDIT_LANGUAGE = 'keygate-audit';

export const REGISTRY_SETTING = { section: 'keygate', key: 'registryUrl' } as const;
