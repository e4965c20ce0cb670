import { InvalidRegistryUrlError, SessionExpiredError, SignInCancelledError } from '../errors.ts';
import { Emitter, type Disposable, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import type { Refresher } from './refresher.ts';
import type { SignInUi } from './sign-in.ts';
import type { SessionStore, StoredSession } from './session-store.ts';

// The `keygate` authentication provider, without VS Code: the adapter hands
// this object to vscode.authentication.registerAuthenticationProvider as is.
// One account per registry. Every change event is derived the same way, by
// comparing the stored session with the last one announced, so sign-in,
// refresh, sign-out and changes made by another window all look alike.

export const PROVIDER_ID = 'keygate';
export const PROVIDER_LABEL = 'Keygate';

/** vscode.AuthenticationSession, structurally. */
export interface AuthSession {
  readonly id: string;
  readonly accessToken: string;
  readonly account: { readonly id: string; readonly label: string };
  readonly scopes: readonly string[];
}

/** vscode.AuthenticationProviderAuthenticationSessionsChangeEvent, structurally. */
export interface SessionsChange {
  readonly added: readonly AuthSession[] | undefined;
  readonly removed: readonly AuthSession[] | undefined;
  readonly changed: readonly AuthSession[] | undefined;
}

export interface AuthProviderDeps {
  /** The canonical registry URL in use; undefined while the setting is not a valid URL. */
  registry(): string | undefined;
  store: SessionStore;
  refresher: Refresher;
  /** One complete sign-in against `registry` (see signIn). */
  signIn(registry: string, signal: AbortSignal): Promise<StoredSession>;
  ui: Pick<SignInUi, 'withProgress'>;
  /** A call to the registry failed: a refresh that could not be made, a sign-in that did not get through. */
  failed?(err: unknown): void;
  log: Logger;
}

export function toAuthSession(session: StoredSession): AuthSession {
  return { id: session.id, accessToken: session.accessToken, account: session.account, scopes: session.scopes };
}

export class KeygateAuthProvider implements Disposable {
  private readonly sessionsChanged = new Emitter<SessionsChange>();
  readonly onDidChangeSessions: Event<SessionsChange> = this.sessionsChanged.event;
  private readonly accountChanged = new Emitter<void>();
  /** Signed in, signed out or another account: not fired for a mere token refresh. */
  readonly onDidChangeAccount: Event<void> = this.accountChanged.event;

  private known: StoredSession | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private signingIn: Promise<AuthSession> | undefined;
  private readonly subscription: Disposable;

  constructor(private readonly deps: AuthProviderDeps) {
    this.subscription = deps.store.onDidChange((registry) => {
      if (registry === deps.registry()) void this.sync();
    });
    void this.sync();
  }

  /**
   * The session, its access token fresh (refreshed about a minute before
   * expiry). The registry decides the scopes per user, so the session is
   * offered whatever scopes are asked for.
   */
  async getSessions(_scopes?: readonly string[]): Promise<AuthSession[]> {
    const registry = this.deps.registry();
    if (!registry) return [];
    let session: StoredSession | undefined;
    try {
      session = await this.deps.refresher.fresh(registry);
    } catch (err) {
      if (err instanceof SessionExpiredError) {
        await this.sync();
        return [];
      }
      // Offline or the registry is down: keep the session; the token may still work, and sign-in would not help.
      this.deps.log.warn('using the stored session without refreshing it', err);
      this.deps.failed?.(err);
      session = await this.deps.store.get(registry);
    }
    await this.sync();
    return session ? [toAuthSession(session)] : [];
  }

  /** Sign in (one sign-in at a time; a second caller joins the running one). */
  createSession(_scopes: readonly string[]): Promise<AuthSession> {
    this.signingIn ??= this.runSignIn().finally(() => {
      this.signingIn = undefined;
    });
    return this.signingIn;
  }

  private async runSignIn(): Promise<AuthSession> {
    const registry = this.deps.registry();
    if (!registry) throw new InvalidRegistryUrlError('set keygate.registryUrl to the registry\'s http(s) URL first (Keygate: Select Registry)');
    const host = new URL(registry).host;
    try {
      const session = await this.deps.ui.withProgress(`Signing in to Keygate at ${host}…`, (signal) => this.deps.signIn(registry, signal));
      if (this.deps.registry() !== registry) throw new Error(`the registry changed to ${this.deps.registry() ?? '(none)'} during sign-in`);
      await this.deps.store.set(session);
      await this.sync();
      return toAuthSession(session);
    } catch (err) {
      if (err instanceof SignInCancelledError) this.deps.log.info(`sign-in to ${registry} was cancelled`);
      else {
        this.deps.log.error(`sign-in to ${registry} failed`, err);
        this.deps.failed?.(err);
      }
      throw err;
    }
  }

  async removeSession(sessionId: string): Promise<void> {
    const registry = this.deps.registry();
    if (!registry) return;
    const stored = await this.deps.store.get(registry);
    if (stored?.id !== sessionId) return;
    // The registry has no revocation endpoint in this slice: the tokens are dropped locally.
    await this.deps.store.delete(registry);
    this.deps.log.info(`signed out of ${registry}`);
    await this.sync();
  }

  /** Who is signed in to the current registry (as stored; no refresh). */
  async currentAccount(): Promise<AuthSession['account'] | undefined> {
    const registry = this.deps.registry();
    return registry ? (await this.deps.store.get(registry))?.account : undefined;
  }

  /** Sign out of the current registry; returns the account that was signed in, if any. */
  async signOut(): Promise<AuthSession['account'] | undefined> {
    const registry = this.deps.registry();
    const stored = registry ? await this.deps.store.get(registry) : undefined;
    if (!stored) return undefined;
    await this.removeSession(stored.id);
    return stored.account;
  }

  /** The registry setting changed: sign out of the previous registry, then look at the new one. */
  async registryChanged(previous: string | undefined): Promise<void> {
    if (previous && previous !== this.deps.registry()) {
      await this.deps.store.delete(previous);
      this.deps.log.info(`signed out of ${previous} (the registry changed)`);
    }
    await this.sync();
  }

  /** Compare the stored session with the one last announced, and announce the difference. Serialized. */
  sync(): Promise<void> {
    const run = this.queue.then(async () => {
      const registry = this.deps.registry();
      const current = registry ? await this.deps.store.get(registry) : undefined;
      this.announce(current);
    });
    this.queue = run.catch((err: unknown) => this.deps.log.error('could not read the stored session', err));
    return this.queue as Promise<void>;
  }

  private announce(current: StoredSession | undefined): void {
    const previous = this.known;
    this.known = current;
    const change = diff(previous, current);
    if (!change) return;
    this.sessionsChanged.fire(change);
    if (change.added?.length || change.removed?.length) this.accountChanged.fire();
  }

  dispose(): void {
    this.subscription.dispose();
    this.sessionsChanged.dispose();
    this.accountChanged.dispose();
  }
}

function diff(previous: StoredSession | undefined, current: StoredSession | undefined): SessionsChange | undefined {
  if (!previous && !current) return undefined;
  if (previous && !current) return { added: undefined, removed: [toAuthSession(previous)], changed: undefined };
  if (!previous && current) return { added: [toAuthSession(current)], removed: undefined, changed: undefined };
  if (previous!.id !== current!.id) return { added: [toAuthSession(current!)], removed: [toAuthSession(previous!)], changed: undefined };
  if (previous!.accessToken !== current!.accessToken || previous!.account.label !== current!.account.label) {
    return { added: undefined, removed: undefined, changed: [toAuthSession(current!)] };
  }
  return undefined;
}
