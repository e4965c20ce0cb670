import { createHash } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { Upstream } from '../catalog/catalog.ts';
import { type Era, type Implementation, UpstreamConnection } from './upstream-client.ts';

// Upstream sessions pooled per (upstream, identity): every call of every
// client that reaches an upstream with the same identity rides the same
// connection, so a tool call never pays an initialize handshake. A connection
// nobody used for a while (and nobody listens on) is closed (2025: DELETE).
//
// A 2026-07-28 upstream that also accepts a 2025 initialize (as servers built
// on the v2 SDK do) is reached in 2026-07-28 for 2026-07-28 clients, and over
// a 2025 session of its own for 2025 clients (`prefer: 'legacy'`): each
// client's era as the upstream speaks it, with no translation between the
// eras, at the rate the upstream serves that era. (server/discover lists only
// 2026-07-28 revisions, so the first such session asks; an upstream that
// refuses the initialize is remembered, and served in 2026-07-28.) An upstream
// of one era has one connection per identity for every client.

export interface PoolOptions {
  log: Logger;
  clientInfo: Implementation;
  /** Close a connection after this long without use. */
  idleMs?: number;
}

/** The identity part of the pool key: the identity's id, else a digest of the credential headers (env value, client-held fields). */
export function identityKey(identityId: string | undefined, headers: Record<string, string>): string {
  if (identityId !== undefined) return `identity:${identityId}`;
  const names = Object.keys(headers).sort();
  if (names.length === 0) return 'none';
  return `headers:${createHash('sha256').update(JSON.stringify(names.map((n) => [n, headers[n]]))).digest('base64url').slice(0, 22)}`;
}

export class UpstreamPool {
  private readonly connections = new Map<string, UpstreamConnection>();
  private readonly eras = new Map<string, Era>();
  /** 2026-07-28 upstream URLs that refused a 2025 initialize. */
  private readonly modernOnly = new Set<string>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleMs: number;

  constructor(private readonly options: PoolOptions) {
    this.idleMs = options.idleMs ?? 10 * 60_000;
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, this.idleMs)).unref();
  }

  /**
   * The pooled connection for this upstream and identity (created on first use; it connects lazily).
   * `prefer: 'legacy'` (a 2025 client): a 2025 session of its own at a 2026-07-28 upstream, unless it refused one.
   */
  get(upstream: Upstream, key: string, prefer?: 'legacy'): UpstreamConnection {
    const href = upstream.url.href;
    const shared = `${upstream.id}\n${href}\n${key}`;
    const ownKey = `${shared}\nlegacy`;
    const era = this.eras.get(href);
    const own = this.live(ownKey);
    let poolKey = shared;
    if (era === 'legacy') {
      // A 2025-only upstream: one session per identity for clients of both eras (the one a 2025 client opened while the era was unknown, if any).
      if (own?.era !== undefined && this.live(shared)?.era === undefined) this.connections.set(shared, own);
    } else if (prefer === 'legacy' && (era === undefined || own !== undefined || !this.modernOnly.has(href))) {
      // A 2025 client's own connection; once made, it stays theirs (in 2026-07-28 if the upstream refused the initialize).
      poolKey = ownKey;
    }
    let connection = this.connections.get(poolKey);
    // A rebuilt catalog may carry a new Upstream object (new timeout, same URL): the session stays, the settings follow.
    if (connection && connection.upstream !== upstream) connection.upstream = upstream;
    if (!connection || connection.closed) {
      connection = new UpstreamConnection(upstream, key, { log: this.options.log, eras: this.eras, modernOnly: this.modernOnly, clientInfo: this.options.clientInfo, ...(poolKey === ownKey && { era: 'legacy' as const }) });
      this.connections.set(poolKey, connection);
    }
    return connection;
  }

  private live(poolKey: string): UpstreamConnection | undefined {
    const connection = this.connections.get(poolKey);
    return connection && !connection.closed ? connection : undefined;
  }

  /** Every live connection (tests and diagnostics). */
  list(): UpstreamConnection[] {
    return [...new Set(this.connections.values())];
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, connection] of this.connections) {
      if (connection.closed || (!connection.busy && now - connection.lastUsed > this.idleMs)) {
        void connection.close();
        this.connections.delete(key);
      }
    }
  }

  /** Every pooled 2025 session ended at its upstream (DELETE), each answered or failed. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closing = [...new Set(this.connections.values())].map((connection) => connection.close());
    this.connections.clear();
    await Promise.all(closing);
  }
}
