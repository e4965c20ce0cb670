import { Client } from 'undici';

// The pooled keep-alive connections of one upstream origin
// (server/catalog/catalog.ts says why the pool is shaped as it is), on
// undici: one `Client` per connection, idle ones used in turn (FIFO, so none
// goes idle while calls flow; undici's own Pool takes the first free one,
// which lets the rest expire under a steady load and reopens them all at the
// next burst). A connection idle for `idleMs` is closed, or 1 s before the
// Keep-Alive timeout the upstream announced if that is shorter, and one whose
// announced timeout leaves no time is closed after its answer (undici's
// keepAliveTimeoutThreshold: node's agent's rule). A client whose connection
// closed reconnects at its next request. undici rather than node's http
// agent: the request costs less to send and its answer less to read
// (docs/performance.md, "The upstream client (undici)").

/** Node's margin before an announced Keep-Alive timeout (HTTP_AGENT_KEEP_ALIVE_TIMEOUT_BUFFER). */
const HINT_MARGIN_MS = 1000;
/** TCP keep-alive's initial delay on an idle connection (node's agent: keepAliveMsecs). */
const KEEP_ALIVE_MSECS = 1000;

export interface UpstreamConnectionsOptions {
  /** The most connections open at once; requests beyond wait, first come first served. */
  max: number;
  /** An idle connection is closed after this long. */
  idleMs: number;
}

export class UpstreamConnections {
  /** Clients with no request, the least recently used first. */
  private readonly idle: Client[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly all: Client[] = [];
  private closed = false;

  constructor(
    private readonly origin: URL,
    private readonly options: UpstreamConnectionsOptions,
  ) {}

  /**
   * A client for one request (undefined: the pool is closed): give it back
   * with `release` once the request is over (answered, failed or aborted).
   */
  acquire(use: (client: Client | undefined) => void): void {
    if (this.closed) return use(undefined);
    const client = this.idle.shift() ?? (this.all.length < this.options.max ? this.create() : undefined);
    if (client) use(client);
    else this.waiting.push(() => this.acquire(use));
  }

  release(client: Client): void {
    if (this.closed) return;
    const next = this.waiting.shift();
    this.idle.push(client);
    next?.();
  }

  /** Every connection closed, every request on one aborted, and every waiting one refused. */
  close(): void {
    this.closed = true;
    for (const client of this.all) void client.destroy(null).catch(() => undefined);
    this.idle.length = 0;
    for (const next of this.waiting.splice(0)) next();
  }

  private create(): Client {
    const { idleMs } = this.options;
    const client = new Client(this.origin, {
      pipelining: 1,
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
      keepAliveTimeoutThreshold: HINT_MARGIN_MS,
      // The transport times the silence before the answer itself (upstream-transport.ts); a stream may stay silent.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { keepAlive: true, keepAliveInitialDelay: KEEP_ALIVE_MSECS },
    });
    this.all.push(client);
    return client;
  }
}
