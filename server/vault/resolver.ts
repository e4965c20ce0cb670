import type { Assignment } from '../catalog/catalog.ts';
import { CODES, type GatewayFailure } from '../catalog/failure.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import { type Identities, type Identity, ORGANIZATION, type Secret } from './identities.ts';
import { fieldProblems, headersFor, InjectionError } from './inject.ts';
import { identityFor, mayServe, ownChoice, selectionKey, type Selections } from './selections.ts';
import { oauthSecret, type UpstreamOAuth } from './upstream-oauth.ts';

// Steps 3-4 of the request path: which identity serves this caller on this
// assignment, and the headers that carry its credential upstream.
//
// shared:   the admin-chosen global identity, or the upstream's own env value,
//           or a client-credentials token Keygate fetches and renews;
// per_user: whose identity identityFor() (selections.ts) says: the one the
//           caller selected while it may serve them, else their own (a
//           disabled own one is refused, never swapped for someone else's);
//           with storage: client, the field values the client sent with the
//           request.
//
// Decrypted secrets are cached in memory and dropped the moment their record
// changes, so the hot path does not decrypt, and a disabled identity stops on
// the next request.

export type Resolution =
  | { ok: true; headers: Record<string, string>; identity: Pick<Identity, 'id' | 'owner'> | undefined }
  | { ok: false; failure: GatewayFailure; connectUrl?: string | undefined };

/** Refresh an OAuth token this long before it expires. */
const REFRESH_MARGIN = 60;

const now = () => Math.floor(Date.now() / 1000);

/** A shared identity that may serve the assignment: its record exists, is of the assignment's upstream, and is global. */
function servesShared(identity: Identity | null | undefined, a: Assignment): identity is Identity {
  return !!identity && identity.upstream === a.upstream.id && identity.availability === 'global';
}

/** An OAuth access token to renew before it is sent (within REFRESH_MARGIN of its expiry). */
function dueForRefresh(secret: Extract<Secret, { kind: 'oauth' }>): boolean {
  return secret.expires_at !== undefined && secret.expires_at - REFRESH_MARGIN <= now();
}

/** A person's own identities of an upstream, as kept in memory. */
const ownKey = (sub: string, upstream: string) => `${sub}\n${upstream}`;

export interface ResolverDeps {
  identities: Identities;
  selections: Selections;
  upstreamOAuth: UpstreamOAuth;
  /** The store's lock: one refresh per identity across every instance on the database. */
  locks: Pick<Store, 'withLock'>;
  connectUrl: (gateway: string, server: string) => string;
  log: Logger;
}

export class CredentialResolver {
  private readonly secrets = new Map<string, Secret>();
  /** The headers last made from each identity's secret (the hot path: not made again per call). */
  private readonly sent = new Map<string, { secret: Secret; credential: Assignment['upstream']['credential']; headers: Record<string, string> }>();
  /** Identity records as the store holds them (null: none), read once each until the record changes: no store read, copy or schema check per call. */
  private readonly records = new Map<string, Identity | null>();
  private changes = 0;
  /** Each person's own identities per upstream, newest first. */
  private readonly own = new Map<string, Identity[]>();
  /** Each person's selection per assignment (null: none). */
  private readonly picks = new Map<string, string | null>();
  private readonly refreshing = new Map<string, Promise<Secret>>();
  private readonly serviceTokens = new Map<string, { secret: Secret; until: number }>();
  private readonly fetchingServiceTokens = new Map<string, Promise<Secret>>();

  constructor(private readonly deps: ResolverDeps) {
    deps.identities.records.onChange((id) => {
      this.changes++;
      this.secrets.delete(id);
      this.sent.delete(id);
      this.records.delete(id);
      this.own.clear();
    });
    deps.selections.records.onChange((key) => this.picks.delete(key));
    // Changes may have been missed (Store.onReset): read everything again when next needed.
    deps.identities.records.onReset(() => {
      this.changes++;
      this.secrets.clear();
      this.sent.clear();
      this.records.clear();
      this.own.clear();
      this.picks.clear();
    });
  }

  /**
   * resolve(), answered without a promise on the hot path: when the identity
   * that serves the caller, its decrypted secret and its headers are already
   * in memory and nothing needs renewing (the same answer, by the same rule).
   */
  resolveNow(principal: Principal | undefined, assignment: Assignment, clientValues?: Record<string, string>): Resolution | Promise<Resolution> {
    return this.fromMemory(principal, assignment) ?? this.resolve(principal, assignment, clientValues);
  }

  private fromMemory(principal: Principal | undefined, a: Assignment): Resolution | undefined {
    const { credential } = a.upstream;
    if (credential.type === 'none' || credential.type === 'client_credentials') return undefined;
    let identity: Identity | null | undefined;
    if (a.identity === 'shared') {
      identity = a.sharedIdentity === undefined ? undefined : this.records.get(a.sharedIdentity);
      if (!servesShared(identity, a)) return undefined;
    } else {
      if (!principal || principal.isClient || a.storage === 'client') return undefined;
      const sub = principal.subject;
      const choice = this.picks.get(selectionKey(sub, a.gateway, a.name));
      if (choice === undefined) return undefined;
      const selected = choice === null ? null : this.records.get(choice);
      if (selected === undefined) return undefined;
      if (selected && mayServe(selected, sub, a.upstream.id)) identity = selected;
      else {
        const own = this.own.get(ownKey(sub, a.upstream.id));
        identity = own && ownChoice(own);
        if (!identity) return undefined;
      }
    }
    if (identity.disabled) return undefined;
    const secret = this.secrets.get(identity.id);
    if (!secret || (secret.kind === 'oauth' && dueForRefresh(secret))) return undefined;
    let sent = this.sent.get(identity.id);
    // The headers made from this secret for this upstream's credential settings (a catalog rebuild makes new settings).
    if (sent?.secret !== secret || sent.credential !== credential) {
      try {
        sent = { secret, credential, headers: Object.freeze(headersFor(credential, secret)) };
      } catch {
        return undefined; // resolve() says why
      }
      this.sent.set(identity.id, sent);
    }
    return { ok: true, headers: sent.headers, identity: { id: identity.id, owner: identity.owner } };
  }

  async resolve(principal: Principal | undefined, assignment: Assignment, clientValues?: Record<string, string>): Promise<Resolution> {
    const { credential } = assignment.upstream;
    if (credential.type === 'none') return { ok: true, headers: {}, identity: undefined };
    try {
      return assignment.identity === 'shared' ? await this.shared(assignment) : await this.perUser(principal, assignment, clientValues);
    } catch (err) {
      if (err instanceof InjectionError) return this.refuse(assignment, 400, 'bad_credential', `the credential for ${this.where(assignment)} cannot be sent: ${err.message}`);
      throw err;
    }
  }

  private where(a: Assignment): string {
    return `/mcp/${a.gateway}/${a.name}`;
  }

  private refuse(a: Assignment, status: number, reason: string, message: string, connect = false): Resolution {
    const connectUrl = connect ? this.deps.connectUrl(a.gateway, a.name) : undefined;
    return { ok: false, connectUrl, failure: { status, code: status === 403 ? CODES.forbidden : CODES.credential, step: 'vault', reason, message: connectUrl ? `${message}: ${connectUrl}` : message } };
  }

  private async shared(a: Assignment): Promise<Resolution> {
    const { credential } = a.upstream;
    if (credential.type === 'client_credentials') {
      return { ok: true, headers: headersFor(credential, await this.serviceToken(a)), identity: { id: `client_credentials:${a.upstream.id}`, owner: ORGANIZATION } };
    }
    if (a.sharedIdentity === undefined) {
      const secret: Secret = credential.type === 'header' ? { kind: 'header', value: a.upstream.envSecret ?? '' } : { kind: 'bearer', token: a.upstream.envSecret ?? '' };
      if (!a.upstream.envSecret) return this.refuse(a, 503, 'shared_identity_missing', `${this.where(a)} has no credential: an admin must choose a shared identity`);
      return { ok: true, headers: headersFor(credential, secret), identity: undefined };
    }
    const identity = await this.identity(a.sharedIdentity);
    if (!servesShared(identity, a)) {
      return this.refuse(a, 503, 'shared_identity_missing', `the shared identity "${a.sharedIdentity}" for ${this.where(a)} is missing; an admin must choose a global identity for this server`);
    }
    return this.use(a, identity);
  }

  private async perUser(principal: Principal | undefined, a: Assignment, clientValues: Record<string, string> | undefined): Promise<Resolution> {
    if (!principal) return this.refuse(a, 401, 'sign_in_required', `${this.where(a)} runs as each person: sign in to use it`);
    // RFC 9068 §2.2: a client-credentials token names no person; an agent acts for one by token exchange (RFC 8693).
    if (principal.isClient) {
      return this.refuse(a, 403, 'agent_without_user', `${this.where(a)} runs as each person: client ${principal.subject} acting as itself has no identity here; exchange the user's token (RFC 8693) to act for them`);
    }
    if (a.storage === 'client') {
      const values = clientValues ?? {};
      // A value no header can carry is bad input (headersFor throws: 400 bad_credential), not a field left to fill in.
      const headers = headersFor(a.upstream.credential, { kind: 'fields', values });
      const problems = fieldProblems(a.upstream.credential, values);
      if (problems.length) return this.refuse(a, 400, 'identity_missing', `fill in the credential fields for ${a.upstream.name} in your Keygate client (${problems.join('; ')})`);
      return { ok: true, headers, identity: undefined };
    }
    const identity = await this.whose(principal.subject, a);
    if (!identity) return this.refuse(a, 403, 'identity_missing', `connect your ${a.upstream.name} account to use ${this.where(a)}`, true);
    return this.use(a, identity);
  }

  private async identity(id: string): Promise<Identity | undefined> {
    let record = this.records.get(id);
    if (record === undefined) {
      const changes = this.changes;
      record = (await this.deps.identities.records.find(id)) ?? null;
      // A change reported while the store was read may not be in what it returned: not kept.
      if (changes === this.changes) this.records.set(id, record);
    }
    return record ?? undefined;
  }

  /** Whose identity serves the caller on this assignment: identityFor(), the rule /api/v1/me/servers states too. */
  private async whose(sub: string, a: Assignment): Promise<Identity | undefined> {
    const key = selectionKey(sub, a.gateway, a.name);
    let choice = this.picks.get(key);
    if (choice === undefined) {
      choice = (await this.deps.selections.get(sub, a.gateway, a.name)) ?? null;
      this.picks.set(key, choice);
    }
    const selected = choice === null ? undefined : await this.identity(choice);
    return identityFor(sub, a.upstream.id, selected, async () => {
      const key = ownKey(sub, a.upstream.id);
      let own = this.own.get(key);
      if (!own) {
        const changes = this.changes;
        own = await this.deps.identities.ownFor(sub, a.upstream.id);
        // A change reported while the store was read may not be in what it returned: not kept.
        if (changes === this.changes) this.own.set(key, own);
      }
      return own;
    });
  }

  private async use(a: Assignment, identity: Identity): Promise<Resolution> {
    if (identity.disabled) return this.refuse(a, 403, 'identity_disabled', `the identity "${identity.label ?? identity.id}" for ${this.where(a)} is disabled by an admin`);
    let secret = this.secrets.get(identity.id);
    if (!secret) {
      try {
        secret = this.deps.identities.reveal(identity);
      } catch (err) {
        this.deps.log.error('identity %s could not be decrypted: %s', identity.id, (err as Error).message);
        return { ok: false, failure: { status: 500, code: CODES.credential, step: 'vault', reason: 'identity_unreadable', message: `the credential of identity "${identity.id}" could not be read; an admin must check the vault key` } };
      }
      this.secrets.set(identity.id, secret);
    }
    if (secret.kind === 'oauth' && dueForRefresh(secret)) {
      if (!secret.refresh_token) return this.refuse(a, 403, 'identity_expired', `your ${a.upstream.name} sign-in has expired: connect again`, true);
      try {
        secret = await this.refresh(a, identity, secret);
      } catch (err) {
        this.deps.log.warn('refreshing identity %s at upstream %s failed: %s', identity.id, a.upstream.id, (err as Error).message);
        return this.refuse(a, 403, 'identity_expired', `your ${a.upstream.name} sign-in could not be renewed: connect again`, true);
      }
    }
    return { ok: true, headers: headersFor(a.upstream.credential, secret), identity: { id: identity.id, owner: identity.owner } };
  }

  /**
   * One refresh per identity however many calls need it at once, in this
   * process (one flight) and across instances (the store's lock, held for the
   * flight; a flight that fails releases it and the next call tries again);
   * the new token set (with the new refresh token) is saved before it is used.
   */
  private refresh(a: Assignment, identity: Identity, secret: Extract<Secret, { kind: 'oauth' }>): Promise<Secret> {
    let pending = this.refreshing.get(identity.id);
    if (!pending) {
      pending = this.deps.locks.withLock(`upstream refresh\n${identity.id}`, async () => {
        // A call may hold a record read before an earlier flight (here, or on
        // another instance) saved its renewal: read it again under the lock, and
        // never spend a rotated refresh token twice (RFC 9700 §4.14.2: the
        // authorization server would revoke the grant).
        const latest = (await this.deps.identities.records.find(identity.id)) ?? identity;
        const stored = latest === identity ? secret : this.deps.identities.reveal(latest);
        if (stored.kind === 'oauth' && stored.access_token !== secret.access_token && (stored.expires_at === undefined || stored.expires_at - REFRESH_MARGIN > now())) {
          this.secrets.set(identity.id, stored);
          return stored;
        }
        const refreshToken = (stored.kind === 'oauth' && stored.refresh_token) || secret.refresh_token!;
        const tokens = await this.deps.upstreamOAuth.refresh(a.upstream, refreshToken);
        const next = oauthSecret(tokens);
        await this.deps.identities.replaceSecret(latest, next);
        this.secrets.set(identity.id, next);
        return next;
      }).finally(() => this.refreshing.delete(identity.id));
      this.refreshing.set(identity.id, pending);
    }
    return pending;
  }

  /** A client-credentials token for the upstream, fetched once and renewed before it expires. */
  private serviceToken(a: Assignment): Promise<Secret> {
    const cached = this.serviceTokens.get(a.upstream.id);
    if (cached && cached.until > now()) return Promise.resolve(cached.secret);
    let pending = this.fetchingServiceTokens.get(a.upstream.id);
    if (!pending) {
      pending = (async () => {
        const tokens = await this.deps.upstreamOAuth.clientCredentials(a.upstream);
        const secret = oauthSecret(tokens);
        this.serviceTokens.set(a.upstream.id, { secret, until: (tokens.expires_at ?? now() + 300) - REFRESH_MARGIN });
        return secret;
      })().finally(() => this.fetchingServiceTokens.delete(a.upstream.id));
      this.fetchingServiceTokens.set(a.upstream.id, pending);
    }
    return pending;
  }
}
