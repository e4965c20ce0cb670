import { type ClientRequest, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Upstream } from '../catalog/catalog.ts';

/** A raw HTTP request to an upstream's MCP URL, on its pooled keep-alive agent. */
export function upstreamRequest(upstream: Upstream, method: string, headers: OutgoingHttpHeaders): ClientRequest {
  const send = upstream.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return send({
    protocol: upstream.url.protocol,
    hostname: upstream.url.hostname,
    port: upstream.url.port,
    path: `${upstream.url.pathname}${upstream.url.search}`,
    method,
    headers,
    agent: upstream.agent,
  });
}
