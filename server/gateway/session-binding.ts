import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * 2025-era upstream sessions (`Mcp-Session-Id`) are bound to the caller: the
 * id the client sees is the upstream's id plus an HMAC over (caller, gateway,
 * server, upstream id). Another caller who learns the id cannot use it, and a
 * forged id is refused, as MCP's security best practices ask ("session
 * hijacking": bind session ids to user-specific information).
 */
/** MACs of the sessions in use, kept: every request of a 2025 session checks its id, and every answer wraps it again. */
const MAX_KEPT = 10_000;
const MAX_INPUT = 512;

export class SessionBinding {
  private readonly macs = new Map<string, string>();

  constructor(private readonly key: Buffer) {}

  private mac(caller: string, route: string, upstreamId: string): string {
    const input = `${caller}\n${route}\n${upstreamId}`;
    let mac = this.macs.get(input);
    if (mac === undefined) {
      mac = createHmac('sha256', this.key).update(input).digest('base64url').slice(0, 22);
      // Bounded in count and size: presented ids are anyone's input.
      if (input.length <= MAX_INPUT) {
        if (this.macs.size >= MAX_KEPT) this.macs.delete(this.macs.keys().next().value!);
        this.macs.set(input, mac);
      }
    }
    return mac;
  }

  /** A separate key for another purpose (e.g. signing multi-round-trip requestState), derived from this one. */
  derive(label: string): Buffer {
    return createHmac('sha256', this.key).update(`keygate derive\n${label}`).digest();
  }

  wrap(caller: string, route: string, upstreamId: string): string {
    return `${Buffer.from(upstreamId).toString('base64url')}.${this.mac(caller, route, upstreamId)}`;
  }

  /** The upstream's session id, or undefined when the id is not this caller's. */
  unwrap(caller: string, route: string, presented: string): string | undefined {
    const dot = presented.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const upstreamId = Buffer.from(presented.slice(0, dot), 'base64url').toString();
    const expected = Buffer.from(this.mac(caller, route, upstreamId));
    const actual = Buffer.from(presented.slice(dot + 1));
    return expected.length === actual.length && timingSafeEqual(expected, actual) ? upstreamId : undefined;
  }
}
