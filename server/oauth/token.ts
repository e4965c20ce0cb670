import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { TOKEN_EXCHANGE_GRANT } from '../config/sections/oauth-server.ts';
import { CLOCK_LEEWAY } from '../inbound/registry-jwt.ts';
import { InvalidGrantError, InvalidRequestError, InvalidScopeError, InvalidTargetError, UnsupportedGrantTypeError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { authenticateClient, type ClientRegistry } from './clients.ts';
import { clientCredentials } from './client-credentials.ts';
import { epoch, tokenHash, type Grants, type RefreshGrant } from './grants.ts';
import { ResourceSpace } from './resource.ts';
import { parseScope } from './scope.ts';
import type { KeyRing } from './signing-keys.ts';
import { tokenExchange } from './token-exchange.ts';
import { clientAuth, many, one, parse, requireGrantType, tokenResponse } from './token-request.ts';
import type { Account, Accounts } from './accounts.ts';

// RFC 6749 §3.2 / OAuth 2.1 §3.2: the token endpoint. Validation in two steps
// (after the MCP SDK): grant_type first, then that grant's own schema.

export interface TokenDeps {
  clients: ClientRegistry;
  accounts: Accounts;
  grants: Grants;
  resources: ResourceSpace;
  log: Logger;
  /** Token exchange verifies the subject token it is given (RFC 8693 §2.1). */
  keys: KeyRing;
  issuer: string;
}

const grantType = z.object({ grant_type: one('grant_type').optional() });

const authorizationCodeGrant = z.object({
  ...clientAuth,
  code: one('code'),
  redirect_uri: one('redirect_uri'),
  // RFC 7636 §4.1: 43 to 128 unreserved characters.
  code_verifier: one('code_verifier', 'code_verifier is missing (PKCE is required)').refine((v) => /^[A-Za-z0-9._~-]{43,128}$/.test(v), 'code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)'),
  resource: many,
});

const refreshTokenGrant = z.object({
  ...clientAuth,
  refresh_token: one('refresh_token'),
  scope: one('scope').optional(),
  resource: many,
});

// RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) must equal the stored code_challenge.
function verifyPkce(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

function audienceFor(deps: TokenDeps, granted: string[], requested: string[]): string[] {
  if (!requested.length) return granted;
  const canonical = deps.resources.validate(requested);
  // RFC 8707 §2.2: a token request may narrow the resources, never widen them.
  if (!ResourceSpace.narrows(granted, canonical)) throw new InvalidTargetError('the requested resource was not part of the authorization grant');
  return canonical;
}

/** RFC 6749 §6: the scopes a refresh asks for, never wider than the grant's. */
function refreshScope(grant: RefreshGrant, requested: string | undefined): string[] {
  const granted = parseScope(grant.scope);
  const asked = requested === undefined ? granted : parseScope(requested);
  const wider = asked.filter((s) => !granted.includes(s));
  if (wider.length) throw new InvalidScopeError(`the refresh token was not granted ${wider.join(' ')}`);
  return asked;
}

async function currentAccount(deps: TokenDeps, sub: string): Promise<Account> {
  const account = await deps.accounts.find(sub);
  if (!account) throw new InvalidGrantError('the user of this grant no longer exists');
  if (account.disabled) throw new InvalidGrantError('the user of this grant is deactivated');
  return account;
}

async function authorizationCode(deps: TokenDeps, req: Request, res: Response): Promise<void> {
  const params = parse(authorizationCodeGrant, req.body);
  const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, ...params });
  requireGrantType(client, 'authorization_code');

  // Redeem atomically: of two concurrent redemptions exactly one sees used: false.
  let replayed = false;
  let mismatched = false;
  const code = await deps.grants.codes.update(tokenHash(params.code), (current) => {
    if (!current) return undefined;
    if (current.client_id !== client.client_id) {
      mismatched = true;
      return current;
    }
    if (current.used) replayed = true;
    return { ...current, used: true };
  });
  if (!code || mismatched) throw new InvalidGrantError('the authorization code is invalid or was issued to another client');
  if (replayed) {
    // OAuth 2.1 §4.1.3 / RFC 9700 §4.5: a replayed code revokes what it issued, access tokens included.
    const revoked = await deps.grants.end(code.family, 'code_replayed');
    deps.log.warn('authorization code replayed for client %s; ended its grant (%d refresh token(s))', client.client_id, revoked);
    throw new InvalidGrantError('the authorization code was already used');
  }
  // Another instance, whose clock may be apart by CLOCK_LEEWAY, may have issued it.
  if (code.expires_at + CLOCK_LEEWAY <= epoch()) throw new InvalidGrantError('the authorization code has expired');
  if (params.redirect_uri !== code.redirect_uri) throw new InvalidGrantError('redirect_uri differs from the one in the authorization request');
  if (!verifyPkce(params.code_verifier, code.code_challenge)) throw new InvalidGrantError('code_verifier does not match the code_challenge');

  const user = await currentAccount(deps, code.sub);
  const resource = audienceFor(deps, code.resource, params.resource);
  const access = await deps.grants.accessToken({ user, clientId: client.client_id, scope: code.scope, resource, grant: code.family });
  const refreshToken = await deps.grants.issueRefreshToken({
    family: code.family,
    client_id: client.client_id,
    sub: code.sub,
    scope: code.scope,
    resource: code.resource,
    auth_time: code.auth_time,
  });
  tokenResponse(res, {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    refresh_token: refreshToken,
    scope: code.scope,
  });
}

async function refreshToken(deps: TokenDeps, req: Request, res: Response): Promise<void> {
  const params = parse(refreshTokenGrant, req.body);
  const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, ...params });
  requireGrantType(client, 'refresh_token');

  // Everything that can refuse a refresh is checked before the token is used
  // up, so a refusal (a scope or resource it was not granted, a deactivated
  // user) leaves it usable instead of turning the retry into a replay.
  const presented = await deps.grants.refreshTokens.find(tokenHash(params.refresh_token));
  let asked: string[] | undefined;
  let resource: string[] | undefined;
  if (presented && !presented.used && presented.client_id === client.client_id) {
    await currentAccount(deps, presented.sub);
    asked = refreshScope(presented, params.scope);
    resource = audienceFor(deps, presented.resource, params.resource);
  }

  let replayed = false;
  let mismatched = false;
  const grant = await deps.grants.refreshTokens.update(tokenHash(params.refresh_token), (current) => {
    if (!current) return undefined;
    if (current.client_id !== client.client_id) {
      mismatched = true;
      return current;
    }
    if (current.used) replayed = true;
    return { ...current, used: true };
  });
  if (!grant || mismatched) throw new InvalidGrantError('the refresh token is invalid, expired or revoked');
  if (replayed) {
    // OAuth 2.1 §4.3.1 / RFC 9700 §4.14.2: reuse of a rotated refresh token ends the whole grant, access tokens included.
    const revoked = await deps.grants.end(grant.family, 'refresh_token_replayed');
    deps.log.warn('rotated refresh token reused by client %s; ended its grant (%d refresh token(s))', client.client_id, revoked);
    throw new InvalidGrantError('the refresh token was already used');
  }

  const user = await currentAccount(deps, grant.sub);
  // The user's scopes may have shrunk since sign-in (an admin removed them from
  // admin_users, or edited builtin scopes): a refresh grants only what they hold now.
  const held = new Set([...user.scopes, 'offline_access']);
  const scope = (asked ?? refreshScope(grant, params.scope)).filter((s) => held.has(s)).join(' ');
  const access = await deps.grants.accessToken({ user, clientId: client.client_id, scope, resource: resource ?? audienceFor(deps, grant.resource, params.resource), grant: grant.family });
  const next = await deps.grants.issueRefreshToken({ ...grant, scope });
  tokenResponse(res, {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    refresh_token: next,
    scope,
  });
}

export function tokenRouter(deps: TokenDeps): Router {
  const router = Router();
  router.post('/token', express.urlencoded({ extended: false, limit: '16kb' }), async (req, res) => {
    if (!req.is('application/x-www-form-urlencoded')) {
      throw new InvalidRequestError('the token request must be application/x-www-form-urlencoded (RFC 6749 §4.1.3)');
    }
    const { grant_type } = parse(grantType, req.body);
    switch (grant_type) {
      case 'authorization_code':
        return authorizationCode(deps, req, res);
      case 'refresh_token':
        return refreshToken(deps, req, res);
      case 'client_credentials':
        return clientCredentials(deps, req, res);
      case TOKEN_EXCHANGE_GRANT:
        return tokenExchange(deps, req, res);
      case undefined:
        throw new InvalidRequestError('grant_type is missing');
      default:
        throw new UnsupportedGrantTypeError(`grant_type ${grant_type} is not supported`);
    }
  });
  return router;
}
