// Types of code-server-install.mjs, for the TypeScript that imports it.

export interface Pins {
  codeServer: string;
  node: string;
  aptPackages: string[];
  allowScripts: string[];
}

export interface InstallPaths {
  cache: string;
  nodePackage: string;
  nodeProject: string;
  nodeHome: string;
  node: string;
  codeServerProject: string;
  entry: string;
  marker: string;
  state: string;
}

export const pins: Pins;
export const SETUP_COMMAND: string;
export function cacheDir(env?: NodeJS.ProcessEnv): string;
export function installPaths(env?: NodeJS.ProcessEnv): InstallPaths;
export function requireInstall(env?: NodeJS.ProcessEnv): InstallPaths & { version: string };
export function codeServerEnv(dataHome: string, env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export function parseVersion(output: string | undefined): string | undefined;
