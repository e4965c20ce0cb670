import type { McpHttpHandler, Server, UriTemplate, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import type { Logger } from '../log.ts';
import type { SessionEventStore } from './event-store.ts';
import type { FastPathState } from './merged-session-fast-path.ts';
import type { SessionOrigin } from './roaming-sessions.ts';
import type { RpcMessage, UpstreamConnection } from './upstream-client.ts';

// One caller's view of one merged gateway: their 2025 sessions, the
// 2026-07-28 handler whose subscriptions/listen streams they hold, where
// each resource URI routes, and the upstream connections they use. What an
// upstream says unasked (list_changed, a resource update, a log message)
// reaches only the callers who use that connection: a per-user upstream's
// news never goes to anyone else.

const LIST_CHANGED = ['notifications/tools/list_changed', 'notifications/prompts/list_changed', 'notifications/resources/list_changed'];
const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

export interface LegacySession {
  id: string;
  caller: CallerState;
  /** What its id carries (its initialize, a nonce), for another instance to pick it up (roaming-sessions.ts). */
  origin: SessionOrigin;
  server: Server;
  transport: WebStandardStreamableHTTPServerTransport;
  /** The session's stored events (both paths: the SDK transport's and the fast path's streams). */
  events: SessionEventStore;
  /** The tools/call fast path's requests to the client and calls in flight (merged-session-fast-path.ts). */
  fast: FastPathState;
  logLevel: string | undefined;
  /** resources/subscribe of this session: the URI and the connection that serves it. */
  subscriptions: Map<string, { conn: UpstreamConnection; headers: Record<string, string> }>;
  /** The client has resumed a stream (sent Last-Event-ID): its POST streams are primed from then on. */
  resumes: boolean;
}

/** Who hears a connection's unsolicited messages: this caller's 2025 sessions, or its 2026-07-28 listen streams. */
export type Audience = 'sessions' | 'listeners';
const EVERYONE: ReadonlySet<Audience> = new Set(['sessions', 'listeners']);

export class CallerState {
  readonly sessions = new Set<LegacySession>();
  /** 2026-07-28: one handler per caller, so its listen streams hear only this caller's upstreams. */
  modern: McpHttpHandler | undefined;
  /** URI → assignment, from resources/list. */
  readonly routes = new Map<string, string>();
  routesFilled = false;
  templates: { assignment: string; uriTemplate: string; matcher: UriTemplate }[] = [];
  openListens = 0;
  lastUsed = Date.now();
  /** Each connection heard, for which of this caller's clients (2025 sessions, 2026-07-28 listeners) and which assignment. */
  private readonly watched = new Map<UpstreamConnection, { stop: () => void; assignment: string; audiences: Set<Audience> }>();

  constructor(
    readonly gatewayId: string,
    readonly callerKey: string,
    /** The person the caller acts for (whose identities and selections the lists depend on); undefined for anonymous callers and clients acting as themselves. */
    readonly subject: string | undefined,
    private readonly log: Logger,
  ) {}

  get idle(): boolean {
    return this.sessions.size === 0 && this.openListens === 0;
  }

  /**
   * Hear what this connection says unasked, for `audience`. One connection per assignment and
   * audience: a 2025 client and a 2026-07-28 one may reach the same upstream over two connections
   * (upstream-pool.ts), and an identity switch moves a caller to another; each notification is
   * told once.
   */
  watch(assignment: string, conn: UpstreamConnection, audience: Audience): void {
    const known = this.watched.get(conn);
    if (known?.audiences.has(audience)) return;
    for (const [other, w] of this.watched) {
      if (other === conn || w.assignment !== assignment || !w.audiences.delete(audience) || w.audiences.size > 0) continue;
      w.stop();
      this.watched.delete(other);
    }
    if (known) return void known.audiences.add(audience);
    const watching = { assignment, audiences: new Set([audience]), stop: () => {} };
    watching.stop = conn.watch((message) => this.onUpstream(assignment, message, watching.audiences));
    this.watched.set(conn, watching);
  }

  onUpstream(_assignment: string, message: RpcMessage, audiences: ReadonlySet<Audience> = EVERYONE): void {
    const modern = audiences.has('listeners') ? this.modern?.notify : undefined;
    const each = (fn: (s: LegacySession) => Promise<void> | void) => {
      if (!audiences.has('sessions')) return;
      for (const s of this.sessions) {
        try {
          void Promise.resolve(fn(s)).catch(() => undefined);
        } catch (err) {
          this.log.debug('notifying a session failed: %s', (err as Error).message);
        }
      }
    };
    switch (message.method) {
      case 'notifications/tools/list_changed':
        each((s) => s.server.sendToolListChanged());
        modern?.toolsChanged();
        break;
      case 'notifications/prompts/list_changed':
        each((s) => s.server.sendPromptListChanged());
        modern?.promptsChanged();
        break;
      case 'notifications/resources/list_changed':
        this.routesFilled = false;
        each((s) => s.server.sendResourceListChanged());
        modern?.resourcesChanged();
        break;
      case 'notifications/resources/updated': {
        const uri = message.params?.uri;
        if (typeof uri !== 'string') break;
        each((s) => (s.subscriptions.has(uri) ? s.server.sendResourceUpdated({ uri }) : undefined));
        modern?.resourceUpdated(uri);
        break;
      }
      case 'notifications/message': {
        const level = String(message.params?.level ?? 'info');
        each((s) => (s.logLevel === undefined || LEVELS.indexOf(level) >= LEVELS.indexOf(s.logLevel) ? s.server.notification({ method: 'notifications/message', params: message.params as never }) : undefined));
        break;
      }
      default:
        break;
    }
  }

  /**
   * What this caller may use changed at the gateway (an identity connected, a
   * selection, an assignment, a break-glass switch): every list may differ, so
   * each of its 2025 sessions and listen streams is told, as an upstream's own
   * list_changed would tell them.
   */
  listsChanged(): void {
    for (const method of LIST_CHANGED) this.onUpstream('', { jsonrpc: '2.0', method });
  }

  /** A client notification every 2025 upstream of this caller should hear (roots list_changed). */
  forward(method: string): void {
    for (const conn of this.watched.keys()) {
      if (conn.era === 'legacy') void conn.notify(method, undefined, conn.credentialHeaders).catch(() => undefined);
    }
  }

  close(): void {
    for (const { stop } of this.watched.values()) stop();
    this.watched.clear();
    void this.modern?.close();
    this.modern = undefined;
  }
}
