import { RegistryResponseError, SignInCancelledError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Me, RegistryClient } from '../registry-client.ts';
import type { AuthCallbacks } from './callbacks.ts';
import type { OAuthFlow } from './oauth-flow.ts';
import type { StoredSession } from './session-store.ts';

// One sign-in, as a list of steps: check that the registry answers (before
// any browser opens on a page that cannot load), discover it, ask the editor for
// the redirect URI, start waiting for the redirect, send the user to the
// registry's login page, redeem the code, ask the registry who signed in.

/** Long enough to type a password and find the tab again; short enough that a forgotten sign-in ends. */
export const SIGN_IN_TIMEOUT_MS = 5 * 60_000;

/** What a sign-in needs from the editor. */
export interface SignInUi {
  /** The redirect URI for this attempt (asExternalUri(...).toString(true)); asked once per attempt. */
  redirectUri(): Promise<string>;
  /** Send the user to the authorization URL; false when no browser could be opened. */
  openBrowser(url: string): Promise<boolean>;
  /** Run the sign-in with a progress notification whose Cancel aborts the signal. */
  withProgress<T>(title: string, task: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

export interface SignInDeps {
  flow: OAuthFlow;
  registryClient: RegistryClient;
  callbacks: AuthCallbacks;
  ui: SignInUi;
  log: Logger;
  timeoutMs?: number;
  newId?: () => string;
}

export async function signIn(deps: SignInDeps, signal?: AbortSignal): Promise<StoredSession> {
  const { flow, log } = deps;
  const registry = flow.registry;
  log.info(`signing in to ${registry}`);
  // RegistryUnreachableError (or RegistryHttpError) names the registry; nothing has been opened yet.
  await deps.registryClient.health();
  if (signal?.aborted) throw new SignInCancelledError('sign-in was cancelled');
  await flow.discover();
  if (signal?.aborted) throw new SignInCancelledError('sign-in was cancelled');

  const redirectUri = await deps.ui.redirectUri();
  const { url, pending } = await flow.authorizationRequest(redirectUri);
  log.info(`waiting for the browser to return to ${redirectUri}`);
  // Stop waiting for the redirect however this ends (error, cancel, success).
  const done = new AbortController();
  const redirect = deps.callbacks.expect(pending.state, {
    timeoutMs: deps.timeoutMs ?? SIGN_IN_TIMEOUT_MS,
    signal: signal ? AbortSignal.any([signal, done.signal]) : done.signal,
  });
  // Awaited below; this keeps a rejection while the browser opens from going unhandled.
  redirect.catch(() => {});

  let params: URLSearchParams;
  try {
    if (!(await deps.ui.openBrowser(url))) throw new Error('could not open a browser for the sign-in page');
    params = await redirect;
  } finally {
    done.abort();
  }
  const tokens = await flow.authorizationCodeGrant(pending, params);
  const me = await deps.registryClient.me(tokens.accessToken);
  const session: StoredSession = {
    id: deps.newId?.() ?? globalThis.crypto.randomUUID(),
    registry,
    account: account(me),
    scopes: tokens.scopes,
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: tokens.expiresAt,
  };
  log.info(`signed in to ${registry} as ${session.account.label}`);
  return session;
}

/** The account VS Code shows: id = the registry's subject; label = the friendliest name it gave. */
export function account(me: Me): StoredSession['account'] {
  if (!me.authenticated) throw new RegistryResponseError('the registry does not accept the token it just issued (GET /api/v1/me says not authenticated)');
  return { id: me.subject, label: me.email ?? me.name ?? me.subject };
}
