import { z } from 'zod';
import type { Principal } from '../inbound/principal.ts';
import { Collection, type Store } from '../store/index.ts';
import { epoch } from './grants.ts';

// What the registry has revoked, for the request path: whole grants (a code
// or refresh-token replay, RFC 7009 revocation of either token), everything a
// user or a client was given before a moment (deactivation, break-glass), and
// single access tokens by jti (tokens issued before grants were named). The
// truth is in the store; each process holds it as sets and maps, loaded at
// start and kept current through the store's change events (which reach
// other instances sharing the store), so the check on every request, token
// cache hit or not, is a lookup in memory. A revocation made here is in the
// sets before revoke() resolves.

const recordSchema = z.object({
  kind: z.enum(['grant', 'subject', 'client', 'jti']),
  key: z.string(),
  revoked_at: z.number(),
  reason: z.enum(['code_replayed', 'refresh_token_replayed', 'token_revoked', 'user_disabled', 'client_disabled']),
});
type RevocationRecord = z.infer<typeof recordSchema>;
export type RevocationKind = RevocationRecord['kind'];
/** Why a grant ended: said in the 401 and recorded in the audit. */
export type RevocationReason = RevocationRecord['reason'];
const legacySchema = z.object({ revoked_at: z.number() });

const DESCRIPTIONS: Record<RevocationReason, string> = {
  code_replayed: 'the access token was revoked: the authorization code it came from was used twice',
  refresh_token_replayed: 'the access token was revoked: a refresh token of its grant was used twice',
  token_revoked: 'the access token was revoked (RFC 7009)',
  user_disabled: 'the access token was revoked: the account is deactivated',
  client_disabled: 'the access token was revoked: its client is disabled by an admin',
};

export interface Revoked {
  reason: RevocationReason;
  description: string;
}

const idOf = (kind: RevocationKind, key: string) => `${kind}:${key}`;

export class Revocations {
  private readonly records: Collection<typeof recordSchema, 'revocations'>;
  /** By id: what is revoked, and until when it matters (after that, every token it covers has expired). */
  private readonly live = new Map<string, RevocationRecord & { until: number }>();
  private readonly unsubscribe: () => void;
  private readonly unreset: () => void;
  /** Changes heard and not yet read back from the store, and the reads in order. */
  private reading = 0;
  private lookups: Promise<void> = Promise.resolve();

  private constructor(
    store: Store,
    /** The longest an access token lives (token_lifetime), plus leeway: a revocation matters no longer. */
    private readonly horizon: number,
  ) {
    this.records = new Collection(store, 'revocations', recordSchema);
    // Another instance (or another part of this one) revoked something: hold it too.
    // Until it is read, check() waits for it: a request that arrives between the notification and the read is not let through.
    this.unsubscribe = this.records.onChange((id) => {
      this.reading++;
      this.lookups = this.lookups
        .then(() => this.records.find(id))
        .then((record) => record && this.hold(record))
        .catch(() => undefined)
        .finally(() => this.reading--);
    });
    // Changes may have been missed (Store.onReset): read every revocation again (none is ever lifted; expired ones are pruned).
    this.unreset = this.records.onReset(() => {
      this.reading++;
      this.lookups = this.lookups
        .then(() => this.records.all())
        .then((records) => records.forEach(([, record]) => this.hold(record)))
        .catch(() => undefined)
        .finally(() => this.reading--);
    });
  }

  static async load(store: Store, accessLifetime: number): Promise<Revocations> {
    const revocations = new Revocations(store, accessLifetime + 60);
    for (const [, record] of await revocations.records.all()) revocations.hold(record);
    // Access tokens revoked by jti before revocations had a kind of their own (kept until they expire).
    for (const [jti, old] of await new Collection(store, 'revoked_access_tokens', legacySchema).all()) {
      revocations.hold({ kind: 'jti', key: jti, revoked_at: old.revoked_at, reason: 'token_revoked' });
    }
    return revocations;
  }

  private hold(record: RevocationRecord): void {
    this.live.set(idOf(record.kind, record.key), { ...record, until: record.revoked_at + this.horizon });
  }

  /**
   * Revoke: in memory at once, then in the store. `subject` and `client`
   * revoke what was issued up to now (a later sign-in is not affected).
   */
  async revoke(kind: RevocationKind, key: string, reason: RevocationReason): Promise<void> {
    const record: RevocationRecord = { kind, key, revoked_at: epoch(), reason };
    this.hold(record);
    this.prune();
    await this.records.upsert(idOf(kind, key), record, record.revoked_at + this.horizon);
  }

  /** Why `principal`'s token is revoked, or undefined. Lookups only: this runs on every request. */
  revoked(principal: Principal): Revoked | undefined {
    if (this.live.size === 0 || principal.provider !== 'registry') return undefined;
    const hit =
      (principal.grant !== undefined && this.live.get(idOf('grant', principal.grant))) ||
      (principal.tokenId !== undefined && this.live.get(idOf('jti', principal.tokenId))) ||
      // A person's deactivation; a client acting as itself is revoked as a client.
      (!principal.isClient && this.issuedBefore(idOf('subject', principal.subject), principal.issuedAt)) ||
      (principal.clientId !== undefined && this.issuedBefore(idOf('client', principal.clientId), principal.issuedAt));
    return hit ? { reason: hit.reason, description: DESCRIPTIONS[hit.reason] } : undefined;
  }

  /**
   * revoked(), once every change heard so far is read: synchronous (a lookup
   * in memory) unless a change, typically another instance's revocation
   * announced through the store, is still being read back.
   */
  check(principal: Principal): Revoked | undefined | Promise<Revoked | undefined> {
    return this.reading === 0 ? this.revoked(principal) : this.lookups.then(() => this.revoked(principal));
  }

  /**
   * Tokens carry `iat` in whole seconds, and a subject or client revocation
   * covers every token issued in its second. A token for them issued in that
   * same second (a re-enabled user signing in at once) would be refused: the
   * issuer waits for the next second first (this returns how long, in ms).
   */
  delayBeforeIssuing(subject: string, clientId: string): number {
    const last = Math.max(this.live.get(idOf('subject', subject))?.revoked_at ?? 0, this.live.get(idOf('client', clientId))?.revoked_at ?? 0);
    return last >= epoch() ? (last + 1) * 1000 - Date.now() : 0;
  }

  /** A subject or client revocation covers tokens issued at or before it. */
  private issuedBefore(id: string, issuedAt: number | undefined) {
    const record = this.live.get(id);
    return record && (issuedAt === undefined || issuedAt <= record.revoked_at) ? record : undefined;
  }

  private prune(): void {
    const now = epoch();
    for (const [id, record] of this.live) if (record.until <= now) this.live.delete(id);
  }

  close(): void {
    this.unsubscribe();
    this.unreset();
  }
}
