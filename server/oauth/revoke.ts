import express, { type Request, type Response, Router } from 'express';
import { decodeJwt, type JWTPayload } from 'jose';
import { z } from 'zod';
import { IntrospectionNotAllowedError, InvalidClientError, InvalidRequestError, UnauthorizedClientError } from '../http/errors.ts';
import { CLIENT_CREDENTIALS_GTY, TokenRejected, verifyRegistryToken } from '../inbound/registry-jwt.ts';
import type { Logger } from '../log.ts';
import { authenticateClient, type ClientRegistry } from './clients.ts';
import { type Grants, tokenHash } from './grants.ts';
import type { Accounts } from './accounts.ts';
import type { KeyRing } from './signing-keys.ts';

// RFC 7009 token revocation and RFC 7662 token introspection.

export interface RevocationDeps {
  clients: ClientRegistry;
  /** Introspection says a deactivated user's tokens are not active. */
  accounts: Accounts;
  grants: Grants;
  keys: KeyRing;
  issuer: string;
  log: Logger;
}

const tokenForm = z.object({
  token: z.string({ error: (i) => (i.input === undefined ? 'token is missing' : 'token must appear once') }).min(1, 'token is missing'),
  token_type_hint: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
});

function parseForm(req: Request): z.infer<typeof tokenForm> {
  if (!req.is('application/x-www-form-urlencoded')) throw new InvalidRequestError('the request must be application/x-www-form-urlencoded');
  const parsed = tokenForm.safeParse(req.body);
  if (!parsed.success) throw new InvalidRequestError(parsed.error.issues[0]!.message);
  return parsed.data;
}

export function revocationRouter(deps: RevocationDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  // RFC 7009 §2.1: the client authenticates, and may only revoke its own tokens.
  router.post('/revoke', form, async (req: Request, res: Response) => {
    const params = parseForm(req);
    const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, client_id: params.client_id, client_secret: params.client_secret });

    const refresh = await deps.grants.refreshTokens.find(tokenHash(params.token));
    if (refresh) {
      if (refresh.client_id !== client.client_id) throw new UnauthorizedClientError('this token was not issued to this client');
      // RFC 7009 §2.1: revoking a refresh token ends its grant, the access tokens issued from it included.
      const revoked = await deps.grants.end(refresh.family, 'token_revoked');
      deps.log.info('client %s revoked a refresh token; its grant ended (%d refresh token(s))', client.client_id, revoked);
    } else if (params.token.split('.').length === 3) {
      let claims: ReturnType<typeof decodeJwt> | undefined;
      try {
        await verifyRegistryToken(params.token, deps.keys, deps.issuer);
        claims = decodeJwt(params.token);
      } catch (err) {
        if (!(err instanceof TokenRejected)) throw err;
      }
      if (claims) {
        if (claims.client_id !== client.client_id) throw new UnauthorizedClientError('this token was not issued to this client');
        // An access token of a grant ends the grant (its refresh tokens and other access tokens too);
        // one issued before grants were named is revoked by itself.
        if (typeof claims.gid === 'string') await deps.grants.end(claims.gid, 'token_revoked');
        else await deps.grants.revokeAccessToken(claims.jti!);
        deps.log.info('client %s revoked an access token%s', client.client_id, typeof claims.gid === 'string' ? ' and its grant' : '');
      }
    }
    // §2.2: an invalid or unknown token is not an error: the client's goal is reached.
    res.set('Cache-Control', 'no-store').status(200).end();
  });

  // RFC 7662: resource servers ask whether a token is active. §2.1: the caller
  // authenticates; §4: and must be a protected resource allowed to ask, which
  // only an admin decides (oauth_server.clients[].resource_server, or the admin
  // API's resource_server): any other client would learn about anyone's tokens.
  router.post('/introspect', form, async (req: Request, res: Response) => {
    const params = parseForm(req);
    const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, client_id: params.client_id, client_secret: params.client_secret });
    if (client.token_endpoint_auth_method === 'none') throw new InvalidClientError('introspection is for clients that authenticate (RFC 7662 §2.1)');
    if (client.resource_server !== true) throw new IntrospectionNotAllowedError('this client is not a resource server allowed to introspect tokens (RFC 7662 §4); an admin can make it one');
    res.set('Cache-Control', 'no-store').json(await introspect(deps, params.token));
  });

  return router;
}

async function introspect(deps: RevocationDeps, token: string): Promise<Record<string, unknown>> {
  const active = async (sub: string | undefined) => sub !== undefined && (await deps.accounts.find(sub))?.disabled === false;
  // RFC 9068 §2.2: a client-credentials token names the client; it is active while the client may still use that grant.
  const activeSubject = async (claims: JWTPayload) =>
    claims.gty === CLIENT_CREDENTIALS_GTY ? ((await deps.clients.find(claims.sub ?? ''))?.grant_types.includes('client_credentials') ?? false) : active(claims.sub);
  const refresh = await deps.grants.refreshTokens.find(tokenHash(token));
  if (refresh && !refresh.used) {
    if (!(await active(refresh.sub)) || (await deps.clients.disabled(refresh.client_id))) return { active: false };
    return { active: true, token_type: 'refresh_token', client_id: refresh.client_id, scope: refresh.scope, sub: refresh.sub, username: refresh.sub, iss: deps.issuer, aud: refresh.resource };
  }
  if (token.split('.').length !== 3) return { active: false };
  try {
    await verifyRegistryToken(token, deps.keys, deps.issuer, (principal) => deps.grants.revocations.revoked(principal));
  } catch (err) {
    if (err instanceof TokenRejected) return { active: false };
    throw err;
  }
  const claims = decodeJwt(token);
  if (!(await activeSubject(claims)) || (typeof claims.client_id === 'string' && (await deps.clients.disabled(claims.client_id)))) return { active: false };
  return {
    active: true,
    token_type: 'Bearer',
    client_id: claims.client_id,
    scope: claims.scope,
    sub: claims.sub,
    username: claims.sub,
    aud: claims.aud,
    iss: claims.iss,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    // RFC 8693 §4.1: an exchanged token says who acts for the subject.
    ...(claims.act !== undefined && { act: claims.act }),
  };
}
