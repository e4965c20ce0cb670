import { SessionExpiredError, TokenRequestError } from '../errors.ts';
import { Emitter, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import type { TokenSet } from './oauth-flow.ts';
import type { SessionStore, StoredSession } from './session-store.ts';

// Keeps the stored session's access token fresh: refreshed about a minute
// before it expires, and only ever once at a time per registry. That matters:
// the registry rotates refresh tokens and treats a second use of a rotated
// one as theft (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2), revoking the whole
// family. So concurrent callers share one refresh, and the refresh re-reads
// the store first: another window may already have rotated the token.

/** Refresh this long before the access token expires ... */
export const REFRESH_MARGIN_MS = 60_000;
/**
 * ... plus up to this much more, chosen once per window. Windows share the
 * stored session; spreading their refresh moments lets the later one find the
 * token the earlier one stored instead of presenting the rotated one again.
 */
export const REFRESH_JITTER_MS = 30_000;

export interface RefresherDeps {
  store: SessionStore;
  /** RFC 6749 §6 with `refreshToken`, against the session's registry. */
  refresh(session: StoredSession, refreshToken: string): Promise<TokenSet>;
  log: Logger;
  now?: () => number;
  /** Default: REFRESH_MARGIN_MS plus a random part of REFRESH_JITTER_MS. */
  marginMs?: number;
}

export class Refresher {
  private readonly ended = new Emitter<string>();
  /** The registry (by URL) refused the refresh token: its session is gone. Fired once per refusal. */
  readonly onSessionEnded: Event<string> = this.ended.event;
  private readonly inflight = new Map<string, Promise<StoredSession | undefined>>();
  private readonly now: () => number;
  private readonly margin: number;

  constructor(private readonly deps: RefresherDeps) {
    this.now = deps.now ?? Date.now;
    this.margin = deps.marginMs ?? REFRESH_MARGIN_MS + Math.floor(Math.random() * REFRESH_JITTER_MS);
  }

  needsRefresh(session: StoredSession): boolean {
    return session.expiresAt !== undefined && session.expiresAt - this.margin <= this.now();
  }

  /**
   * The registry's session with an access token good for at least the margin,
   * or undefined when there is none (or it can no longer be refreshed).
   * Throws SessionExpiredError when the registry rejected the refresh token
   * (the session has then been removed), and network errors as they are.
   */
  async fresh(registry: string): Promise<StoredSession | undefined> {
    const running = this.inflight.get(registry);
    if (running) return running;
    const session = await this.deps.store.get(registry);
    if (!session || !this.needsRefresh(session)) return session;
    return this.flight(registry, (current) => this.needsRefresh(current));
  }

  /**
   * The registry rejected `accessToken` before its time (revoked, or the clock
   * is off): refresh, unless the stored session already holds another token.
   */
  async replace(registry: string, accessToken: string): Promise<StoredSession | undefined> {
    return this.flight(registry, (current) => current.accessToken === accessToken);
  }

  private flight(registry: string, stale: (session: StoredSession) => boolean): Promise<StoredSession | undefined> {
    let running = this.inflight.get(registry);
    if (!running) {
      running = this.refresh(registry, stale).finally(() => this.inflight.delete(registry));
      this.inflight.set(registry, running);
    }
    return running;
  }

  private async refresh(registry: string, stale: (session: StoredSession) => boolean): Promise<StoredSession | undefined> {
    // Read again inside the single flight: another caller or window may have refreshed meanwhile.
    const session = await this.deps.store.get(registry);
    if (!session || !stale(session)) return session;
    if (!session.refreshToken) {
      if (session.expiresAt !== undefined && session.expiresAt <= this.now()) {
        this.deps.log.info(`the session for ${registry} expired and has no refresh token; signing out`);
        await this.deps.store.delete(registry);
        return undefined;
      }
      return session;
    }
    this.deps.log.info(`refreshing the access token for ${registry}`);
    let tokens: TokenSet;
    try {
      tokens = await this.deps.refresh(session, session.refreshToken);
    } catch (err) {
      if (err instanceof TokenRequestError && err.error === 'invalid_grant') {
        // RFC 6749 §5.2: the grant is gone (expired, revoked, or its family revoked). Sign out.
        this.deps.log.warn(`the registry rejected the refresh token for ${registry}; signing out`, err);
        await this.deps.store.delete(registry);
        this.ended.fire(registry);
        throw new SessionExpiredError(`the session for ${registry} has ended; sign in again`, { cause: err });
      }
      this.deps.log.error(`could not refresh the access token for ${registry}`, err);
      throw err;
    }
    const next: StoredSession = {
      ...session,
      accessToken: tokens.accessToken,
      // RFC 6749 §6: without a new refresh token, the old one stays valid.
      refreshToken: tokens.refreshToken ?? session.refreshToken,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes,
    };
    // A sign-in or sign-out while the request was out wins over the refreshed old session.
    const current = await this.deps.store.get(registry);
    if (current?.id !== session.id) return current;
    await this.deps.store.set(next);
    return next;
  }
}
