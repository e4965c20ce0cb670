import type { Request } from 'express';

// The address of the client that sent a request: what the per-address
// throttles (sign-in, registration) count by. Without server.trust_proxy it is
// the socket's peer and X-Forwarded-For is ignored, so a caller cannot choose
// it. With trust_proxy, express walks X-Forwarded-For from the right, past the
// trusted proxies, to the first address they did not add themselves
// (express's 'trust proxy', which app.ts sets from server.trust_proxy).

/** The request's client address, as server.trust_proxy says to read it. */
export function clientAddress(req: Request): string | undefined {
  return req.ip ?? req.socket.remoteAddress;
}
