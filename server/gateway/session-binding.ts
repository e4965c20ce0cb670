import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * 2025-era upstream sessions (`Mcp-Session-Id`) are bound to the caller: the
 * id the client sees is the upstream's id plus an HMAC over (caller, gateway,
 * server, upstream id). Another caller who learns the id cannot use it, and a
 * forged id is refused, as MCP's security best practices ask ("session
 * hijacking": bind session ids to user-specific information).
 */
export class SessionBinding {
  constructor(private readonly key: Buffer) {}

  private mac(caller: string, route: string, upstreamId: string): string {
    return createHmac('sha256', this.key).update(`${caller}\n${route}\n${upstreamId}`).digest('base64url').slice(0, 22);
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
