import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authorizeUrl, pkce, registerClient } from './oauth.ts';

// The client side of the browser sign-in tests: a loopback redirect URI that
// records where the browser lands, and a registered client's authorization
// request with PKCE.

export interface ClientCallback {
  redirectUri: string;
  /** Every /callback the browser reached, in order. */
  received: URL[];
  close(): void;
}

export async function startClientCallback(): Promise<ClientCallback> {
  const received: URL[] = [];
  let redirectUri = '';
  const server = createServer((req, res) => {
    const url = new URL(req.url!, redirectUri);
    if (url.pathname === '/callback') received.push(url);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Signed in. You can close this window.</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  return { redirectUri, received, close: () => server.close() };
}

/** Register a client for `redirectUri` and make its authorization request for the registry's team gateway. */
export async function startAuthorization(registry: string, redirectUri: string, clientName: string, state: string): Promise<{ clientId: string; verifier: string; url: URL }> {
  const { client_id } = await registerClient(registry, { redirect_uris: [redirectUri], client_name: clientName });
  const { verifier, challenge } = pkce();
  const url = authorizeUrl(registry, { response_type: 'code', client_id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state, resource: `${registry}/mcp/team` });
  return { clientId: client_id, verifier, url };
}
