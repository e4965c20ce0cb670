import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { InvalidScopeError, UnauthorizedClientError } from '../http/errors.ts';
import { CLIENT_CREDENTIALS_GTY } from '../inbound/registry-jwt.ts';
import { authenticateClient, type Client } from './clients.ts';
import { parseScope, withoutUnaskedAdmin } from './scope.ts';
import type { TokenDeps } from './token.ts';
import { clientAuth, many, one, parse, requireGrantType, tokenResponse } from './token-request.ts';

// RFC 6749 §4.4: the client credentials grant. A headless agent (a configured,
// confidential client) asks for a token as itself. Per RFC 9068 §2.2 its `sub`
// is the client id; `gty: client_credentials` tells resource servers (and the
// gateway) that no person is behind it, so it reaches shared servers only.

const clientCredentialsGrant = z.object({
  ...clientAuth,
  scope: one('scope').optional(),
  resource: many,
});

/** RFC 6749 §4.4 / RFC 8693 §2.1: grants in which the client speaks for itself need a client that can authenticate. */
export function requireConfidential(client: Client, grant: string): void {
  if (client.token_endpoint_auth_method === 'none') throw new UnauthorizedClientError(`the ${grant} grant is for confidential clients (a public client cannot prove who it is)`);
}

/** RFC 6749 §3.3: the scope a client asked for, within what an admin configured for it (`oauth_server.clients[].scopes`). */
function clientScope(client: Client, requested: string | undefined): string[] {
  const allowed = parseScope(client.scope);
  const asked = requested === undefined ? allowed : parseScope(requested);
  const wider = asked.filter((s) => !allowed.includes(s));
  if (wider.length) throw new InvalidScopeError(`this client may not ask for ${wider.join(' ')} (its scopes: ${allowed.join(' ') || 'none'})`);
  return asked;
}

export async function clientCredentials(deps: TokenDeps, req: Request, res: Response): Promise<void> {
  const params = parse(clientCredentialsGrant, req.body);
  // RFC 6749 §4.4.2: the client MUST authenticate.
  const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, ...params });
  requireConfidential(client, 'client_credentials');
  requireGrantType(client, 'client_credentials');

  // RFC 8707 §2: audience-bound to the resource asked for, else (as for sign-ins) the registry as a whole.
  const resource = deps.resources.validate(params.resource.length ? params.resource : [deps.resources.base]);
  const scope = withoutUnaskedAdmin(clientScope(client, params.scope), params.scope, resource, deps.resources.base).join(' ');
  const access = await deps.grants.accessToken(
    // Each token is a grant of its own: revoking one (RFC 7009) leaves the client's others alone.
    { user: { sub: client.client_id, name: client.client_name }, clientId: client.client_id, scope, resource, grant: randomUUID() },
    { claims: { gty: CLIENT_CREDENTIALS_GTY } },
  );
  deps.log.info('client %s obtained a token as itself for %s', client.client_id, resource.join(' '));
  // RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
  tokenResponse(res, { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope });
}
