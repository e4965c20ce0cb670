// The ids the manifest (package.json `contributes`) and the code must agree
// on, in one place; test/unit/extension-manifest.test.ts holds them together.

export { PROVIDER_ID, PROVIDER_LABEL } from './auth/provider.ts';

export const MCP_PROVIDER_ID = 'keygate.gateways';
export const MCP_PROVIDER_LABEL = 'Keygate';

export const COMMANDS = {
  signIn: 'keygate.signIn',
  signOut: 'keygate.signOut',
  selectRegistry: 'keygate.selectRegistry',
} as const;

export const REGISTRY_SETTING = { section: 'keygate', key: 'registryUrl' } as const;
