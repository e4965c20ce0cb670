import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Collection, type Store } from '../store/index.ts';
import type { SessionBinding } from './session-binding.ts';

// A 2025 session of /mcp/{gateway} that any instance can serve. Its
// Mcp-Session-Id carries what the session's initialize said (the protocol
// version asked for, the client's capabilities and info), a nonce and the
// time it began, bound to the caller and the gateway by the SessionBinding (a
// key derived from the vault key, the same on every instance): an instance
// that holds no such session opens one from the id (merged-endpoint.ts),
// another caller's or a forged id reads as no session at all, as on one
// instance (MCP security best practices, "session hijacking").
//
// A DELETE ends the session everywhere: its nonce is recorded (until the id
// could no longer be picked up) and every instance that holds the session
// hears of it through the store's onChange and closes it; one that does not
// hold it refuses to open it.

/** An instance picks a session up for this long after its initialize (a session held stays as long as it is used). */
export const PICK_UP_FOR_S = 24 * 3600;
/** A longer id (a client declaring many capabilities) keeps only the capabilities the gateway acts on. */
const MAX_ID_LENGTH = 2048;
const KEPT_CAPABILITIES = ['elicitation', 'sampling', 'roots'];

const originSchema = z.object({
  /** A nonce: the session's name in the record of ended sessions. */
  n: z.string().min(16).max(64),
  /** When its initialize was answered, epoch seconds. */
  t: z.number().int(),
  /** The protocol version the client's initialize asked for. */
  v: z.string().max(64),
  c: z.record(z.string(), z.unknown()),
  i: z.looseObject({ name: z.string(), version: z.string() }),
});
export type SessionOrigin = z.infer<typeof originSchema>;

const endedSchema = z.object({ gateway: z.string() });

const route = (gatewayId: string) => `merged:${gatewayId}`;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class RoamingSessions {
  private readonly ended: Collection<typeof endedSchema, 'ended_sessions'>;

  constructor(
    private readonly binding: SessionBinding,
    store: Store,
    /** Epoch seconds (injected: tests freeze it). */
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.ended = new Collection(store, 'ended_sessions', endedSchema);
  }

  /** The id of a new session, from its initialize request's params (validated by the SDK before the id is asked for). */
  mint(callerKey: string, gatewayId: string, params: unknown): { id: string; origin: SessionOrigin } {
    const p = isObject(params) ? params : {};
    const info = isObject(p.clientInfo) ? p.clientInfo : {};
    const origin: SessionOrigin = {
      n: randomBytes(12).toString('base64url'),
      t: this.now(),
      v: String(p.protocolVersion ?? ''),
      c: isObject(p.capabilities) ? p.capabilities : {},
      i: { name: String(info.name ?? ''), version: String(info.version ?? '') },
    };
    let id = this.binding.wrap(callerKey, route(gatewayId), JSON.stringify(origin));
    if (id.length > MAX_ID_LENGTH) {
      origin.c = Object.fromEntries(Object.entries(origin.c).filter(([k]) => KEPT_CAPABILITIES.includes(k)));
      id = this.binding.wrap(callerKey, route(gatewayId), JSON.stringify(origin));
    }
    return { id, origin };
  }

  /** What a presented id carries, when it is this caller's session on this gateway and may still be picked up. */
  async read(callerKey: string, gatewayId: string, presented: string): Promise<SessionOrigin | undefined> {
    if (presented.length > MAX_ID_LENGTH * 2) return undefined;
    const payload = this.binding.unwrap(callerKey, route(gatewayId), presented);
    if (payload === undefined) return undefined;
    let parsed;
    try {
      parsed = originSchema.safeParse(JSON.parse(payload));
    } catch {
      return undefined;
    }
    if (!parsed.success || parsed.data.t + PICK_UP_FOR_S <= this.now()) return undefined;
    return (await this.ended.find(parsed.data.n)) ? undefined : parsed.data;
  }

  /** The client ended the session (DELETE): recorded for every instance, until its id could no longer be picked up. */
  end(gatewayId: string, origin: SessionOrigin): Promise<void> {
    return this.ended.upsert(origin.n, { gateway: gatewayId }, origin.t + PICK_UP_FOR_S);
  }

  /** Hear every session ended, here or on another instance, by its nonce. */
  onEnded(listener: (nonce: string) => void): () => void {
    return this.ended.onChange(listener);
  }
}
