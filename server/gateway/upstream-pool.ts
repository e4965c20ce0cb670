import { createHash } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { Upstream } from '../catalog/catalog.ts';
import { type Era, type Implementation, UpstreamConnection } from './upstream-client.ts';

// Upstream sessions pooled per (upstream, identity): every call of every
// client that reaches an upstream with the same identity rides the same
// connection, so a tool call never pays an initialize handshake. A connection
// nobody used for a while (and nobody listens on) is closed (2025: DELETE).

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
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleMs: number;

  constructor(private readonly options: PoolOptions) {
    this.idleMs = options.idleMs ?? 10 * 60_000;
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, this.idleMs)).unref();
  }

  /** The pooled connection for this upstream and identity (created on first use; it connects lazily). */
  get(upstream: Upstream, key: string): UpstreamConnection {
    const poolKey = `${upstream.id}\n${upstream.url.href}\n${key}`;
    let connection = this.connections.get(poolKey);
    // A rebuilt catalog may carry a new Upstream object (new timeout, same URL): the session stays, the settings follow.
    if (connection && connection.upstream !== upstream) connection.upstream = upstream;
    if (!connection || connection.closed) {
      connection = new UpstreamConnection(upstream, key, { log: this.options.log, eras: this.eras, clientInfo: this.options.clientInfo });
      this.connections.set(poolKey, connection);
    }
    return connection;
  }

  /** Every live connection (tests and diagnostics). */
  list(): UpstreamConnection[] {
    return [...this.connections.values()];
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
    const closing = [...this.connections.values()].map((connection) => connection.close());
    this.connections.clear();
    await Promise.all(closing);
  }
}
