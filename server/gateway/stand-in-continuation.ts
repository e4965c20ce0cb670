import type { Logger } from '../log.ts';
import type { Upstream } from '../catalog/catalog.ts';
import type { InitializeParams } from './unconnected-responder.ts';
import { UpstreamConnection } from './upstream-client.ts';

// A 2025 session that the stand-in opened on /mcp/{gateway}/{server} while
// the person had not connected their account (unconnected-responder.ts)
// goes on once they connect: on the first request with that session id, the
// gateway opens a session at the upstream on the client's behalf, replaying
// the client's own initialize (carried, MACed, in the stand-in's session id)
// with the initialize handshake of upstream-client.ts, and forwards this and
// every later request of the id to it. The client keeps its Mcp-Session-Id
// and never sees a 404 (Streamable HTTP: a 404 makes it start over, which
// SDK-based clients do not do on their own).
//
// The map lives in this process: another instance of the registry, or this
// one after a restart, opens its own upstream session for the same id.

/** At most this many continued sessions are remembered; the oldest is forgotten first (its client then gets the upstream's 404, and starts over). */
const MAX_SESSIONS = 10_000;

export class ContinuedSessions {
  /** (caller, route with the identity, presented id) → the upstream's session id (undefined: a stateless upstream). */
  private readonly sessions = new Map<string, Promise<{ upstreamId: string | undefined }>>();
  /** The connections that opened them: the registry's close() ends their sessions (DELETE). */
  private readonly connections = new Map<string, UpstreamConnection>();

  constructor(private readonly log: Logger) {}

  /** The upstream session that continues `key`, opened (once, however many requests race) with the client's initialize. */
  upstreamSession(key: string, upstream: Upstream, headers: Record<string, string>, init: InitializeParams): Promise<{ upstreamId: string | undefined }> {
    let session = this.sessions.get(key);
    if (!session) {
      const connection = new UpstreamConnection(upstream, key, {
        log: this.log,
        // The client started a 2025 session: it goes on as one (no server/discover first).
        eras: new Map([[upstream.url.href, 'legacy']]),
        clientInfo: init.clientInfo,
        initialize: init,
      });
      session = connection.connect(headers).then(() => ({ upstreamId: connection.sessionId }));
      session.catch(() => this.forget(key));
      if (this.sessions.size >= MAX_SESSIONS) this.forget(this.sessions.keys().next().value!);
      this.sessions.set(key, session);
      this.connections.set(key, connection);
    }
    return session;
  }

  /** The client ended the session (DELETE): forget it. */
  forget(key: string): void {
    this.sessions.delete(key);
    this.connections.delete(key);
  }

  /** The registry is closing: end every continued session at its upstream (DELETE). */
  async close(): Promise<void> {
    const closing = [...this.connections.values()].map((connection) => connection.close());
    this.sessions.clear();
    this.connections.clear();
    await Promise.all(closing);
  }
}
