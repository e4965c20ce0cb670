import { randomUUID } from 'node:crypto';
import { createRequestStateCodec, type RequestStateCodec } from '@modelcontextprotocol/server';
import type { RpcMessage } from './upstream-client.ts';
import { CODES } from '../catalog/failure.ts';

// Multi-round-trip requests across eras (2026-07-28, "input_required"):
//
// - a 2026-07-28 upstream answers input_required: the gateway passes the
//   embedded requests on as they are and wraps the upstream's requestState in
//   its own (signed, bound to the caller and the assignment). The retry goes
//   back to the upstream with the client's inputResponses: nothing is held.
// - a 2025 upstream sends server-to-client requests on a call's stream while
//   a 2026-07-28 client is waiting: that client has no channel for them, so
//   the gateway holds the upstream call open (a PendingCall), answers the
//   client with input_required carrying those requests, and on the retry
//   hands the client's answers to the upstream and waits for what comes next:
//   another round, or the result.
//
// (A 2025 client needs none of this: the SDK's legacy shim turns an
// input_required return into real server-to-client requests on its session,
// and 2025 upstream requests are relayed to it directly.)

export type GatewayState =
  /** The upstream's own requestState (2026-07-28 upstream). */
  | { k: 'upstream'; c: string; a: string; s?: string | undefined }
  /** A held 2025 upstream call. */
  | { k: 'pending'; c: string; a: string; p: string }
  /** The user was sent to connect their account. */
  | { k: 'connect'; c: string; a: string };

export function gatewayStateCodec(key: Buffer): RequestStateCodec<GatewayState> {
  return createRequestStateCodec<GatewayState>({ key, ttlSeconds: 900 });
}

export interface InputRequestBody {
  method: string;
  params?: Record<string, unknown> | undefined;
}

type Reply = Pick<RpcMessage, 'result' | 'error'>;

/** How long a held call waits for the client's next round before it is cancelled. */
const ROUND_TIMEOUT_MS = 10 * 60_000;

export class PendingCall {
  readonly id = randomUUID();
  /** Where notifications of the held call go: the client request of the current round, if one is open. */
  relay: ((message: RpcMessage) => void) | undefined;
  private readonly abort = new AbortController();
  private readonly asks = new Map<string, { request: InputRequestBody; reply: (r: Reply) => void }>();
  private outcome: { answer: RpcMessage } | { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private count = 0;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    readonly owner: string,
    readonly assignment: string,
    run: (ask: (message: RpcMessage) => Promise<Reply>, signal: AbortSignal) => Promise<RpcMessage>,
    private readonly onSettled: (call: PendingCall) => void,
  ) {
    run(this.ask, this.abort.signal).then(
      (answer) => this.settle({ answer }),
      (error: unknown) => this.settle({ error }),
    );
    this.touch();
  }

  private settle(outcome: { answer: RpcMessage } | { error: unknown }): void {
    this.outcome = outcome;
    for (const { reply } of this.asks.values()) reply({ error: { code: CODES.internalError, message: 'the call ended' } });
    this.asks.clear();
    this.wake?.();
  }

  private readonly ask = (message: RpcMessage): Promise<Reply> =>
    new Promise((reply) => {
      const key = `input_${++this.count}`;
      this.asks.set(key, { request: { method: message.method!, ...(message.params !== undefined && { params: message.params }) }, reply });
      this.wake?.();
    });

  private touch(): void {
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.cancel('the client did not come back in time'), ROUND_TIMEOUT_MS);
    this.expiry.unref();
  }

  /** The client's answers of this round, by the keys the gateway handed out. */
  respond(responses: Record<string, unknown> | undefined): void {
    this.touch();
    for (const [key, value] of Object.entries(responses ?? {})) {
      const ask = this.asks.get(key);
      if (!ask) continue;
      this.asks.delete(key);
      ask.reply({ result: value as Record<string, unknown> });
    }
  }

  /** Wait for the result, or for requests the client must answer first. */
  async next(signal: AbortSignal): Promise<{ answer: RpcMessage } | { input: Record<string, InputRequestBody> }> {
    for (;;) {
      if (this.outcome) {
        clearTimeout(this.expiry);
        if ('answer' in this.outcome) return this.outcome;
        throw this.outcome.error;
      }
      if (this.asks.size > 0) {
        // Requests sent together arrive together: give the rest a moment before answering.
        await new Promise((r) => setTimeout(r, 5));
        if (!this.outcome) return { input: Object.fromEntries([...this.asks].map(([k, v]) => [k, v.request])) };
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.wake = undefined;
      if (signal.aborted && !this.outcome) {
        this.cancel('the client went away');
        throw new Error('cancelled');
      }
    }
  }

  cancel(reason: string): void {
    if (this.outcome) return;
    this.abort.abort(new Error(reason));
    this.settle({ error: new Error(reason) });
    this.onSettled(this);
  }
}

export class PendingCalls {
  private readonly calls = new Map<string, PendingCall>();

  start(owner: string, assignment: string, run: ConstructorParameters<typeof PendingCall>[2]): PendingCall {
    const call = new PendingCall(owner, assignment, run, (c) => this.calls.delete(c.id));
    this.calls.set(call.id, call);
    return call;
  }

  /** A held call, only for the caller who started it. */
  get(id: string, owner: string): PendingCall | undefined {
    const call = this.calls.get(id);
    return call && call.owner === owner ? call : undefined;
  }

  finish(call: PendingCall): void {
    this.calls.delete(call.id);
  }

  close(): void {
    for (const call of this.calls.values()) call.cancel('the gateway is shutting down');
    this.calls.clear();
  }
}
