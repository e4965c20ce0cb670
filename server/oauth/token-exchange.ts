import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { TOKEN_EXCHANGE_GRANT } from '../config/sections/oauth-server.ts';
import { InvalidRequestError, InvalidScopeError, InvalidTargetError, UnauthorizedClientError } from '../http/errors.ts';
import type { Principal } from '../inbound/principal.ts';
import { TokenRejected, verifyRegistryToken } from '../inbound/registry-jwt.ts';
import type { Account } from './accounts.ts';
import { authenticateClient, type Client, type TokenExchangePolicy } from './clients.ts';
import { requireConfidential } from './client-credentials.ts';
import { epoch } from './grants.ts';
import { ResourceSpace } from './resource.ts';
import { parseScope, withoutUnaskedAdmin } from './scope.ts';
import type { TokenDeps } from './token.ts';
import { clientAuth, many, one, parse, tokenResponse } from './token-request.ts';

// RFC 8693: token exchange, for headless agents. An agent authenticates as
// itself and presents an end user's access token (the subject token); if an
// admin allowed that agent (oauth_server.clients[].token_exchange), it gets a
// new, short-lived access token whose `sub` is the user and whose `act` names
// the agent (§4.1), bound to the gateway resource it asked for. Never the same
// token (no passthrough), never a refresh token, never more than the user's
// token or the agent's allowance.
//
// Errors follow §2.2.2: a subject or actor token that is invalid or
// unacceptable by policy is `invalid_request`; a target the server will not
// issue for is `invalid_target`; an agent no admin allowed is
// `unauthorized_client` (RFC 6749 §5.2).

/** RFC 8693 §3: token type identifiers. */
export const TOKEN_TYPE = {
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
} as const;

const tokenExchangeGrant = z
  .object({
    ...clientAuth,
    subject_token: one('subject_token'),
    subject_token_type: one('subject_token_type'),
    actor_token: one('actor_token').optional(),
    actor_token_type: one('actor_token_type').optional(),
    requested_token_type: one('requested_token_type').optional(),
    resource: many,
    audience: many,
    scope: one('scope').optional(),
  })
  // RFC 8693 §2.1: actor_token_type is REQUIRED with actor_token and MUST NOT be sent without it.
  .refine((p) => (p.actor_token === undefined) === (p.actor_token_type === undefined), 'actor_token_type is required with actor_token, and only with it (RFC 8693 §2.1)');
type Params = z.infer<typeof tokenExchangeGrant>;

/** RFC 6749 §5.2 unauthorized_client unless an admin allowed this client to act for users. */
function checkAllowed(client: Client): TokenExchangePolicy {
  requireConfidential(client, 'token exchange');
  // Configured clients carry it from the file; admin-created ones in their record (never a registered one: registration cannot set it).
  const stored = client.source === 'admin' ? client.token_exchange : undefined;
  const policy: TokenExchangePolicy | undefined = client.tokenExchange ?? (stored && { resources: stored.resources, users: stored.users, lifetime: stored.lifetime });
  if (!policy || !client.grant_types.includes(TOKEN_EXCHANGE_GRANT)) {
    throw new UnauthorizedClientError('an admin has not allowed this client to exchange tokens (token_exchange: in the file, or the admin API\'s)');
  }
  return policy;
}

/** RFC 8693 §2.1 requested_token_type: only access tokens are issued. */
function checkRequestedType(params: Params): void {
  if (params.requested_token_type !== undefined && params.requested_token_type !== TOKEN_TYPE.access_token) {
    throw new InvalidRequestError(`requested_token_type ${params.requested_token_type} is not issued here; ask for ${TOKEN_TYPE.access_token}`);
  }
}

async function verifyToken(deps: TokenDeps, token: string, which: 'subject_token' | 'actor_token'): Promise<Principal> {
  try {
    return await verifyRegistryToken(token, deps.keys, deps.issuer, (principal) => deps.grants.revocations.revoked(principal));
  } catch (err) {
    if (err instanceof TokenRejected) throw new InvalidRequestError(`${which}: ${err.message}`);
    throw err;
  }
}

/**
 * The user's access token, issued by this registry, unexpired and unrevoked.
 * Refresh tokens are refused: one stays with the client it was issued to
 * (OAuth 2.1 §4.3.1), and would let an agent act for the user for weeks.
 */
async function checkSubjectToken(deps: TokenDeps, params: Params): Promise<Principal> {
  if (params.subject_token_type === TOKEN_TYPE.refresh_token) {
    throw new InvalidRequestError(`a refresh token is not accepted as subject_token: present the user's access token (${TOKEN_TYPE.access_token})`);
  }
  if (params.subject_token_type !== TOKEN_TYPE.access_token) {
    throw new InvalidRequestError(`subject_token_type ${params.subject_token_type} is not supported; present the user's access token (${TOKEN_TYPE.access_token})`);
  }
  const subject = await verifyToken(deps, params.subject_token, 'subject_token');
  if (subject.isClient) throw new InvalidRequestError('subject_token names a client acting as itself, not a user');
  // One agent deep: an exchanged token is not exchanged again.
  if (subject.actor) throw new InvalidRequestError('subject_token was itself obtained by token exchange; present the user\'s own access token');
  return subject;
}

/** RFC 8693 §2.1 actor_token: optional; when sent, it must be the authenticated client's own client-credentials token. */
async function checkActorToken(deps: TokenDeps, params: Params, client: Client): Promise<void> {
  if (params.actor_token === undefined) return;
  if (params.actor_token_type !== TOKEN_TYPE.access_token) throw new InvalidRequestError(`actor_token_type must be ${TOKEN_TYPE.access_token}`);
  const actor = await verifyToken(deps, params.actor_token, 'actor_token');
  if (!actor.isClient || actor.subject !== client.client_id) throw new InvalidRequestError('actor_token does not name the authenticated client');
}

/** The user still exists, is not deactivated, and is one this agent may act for (token_exchange.users). */
async function checkUser(deps: TokenDeps, subject: Principal, policy: TokenExchangePolicy): Promise<Account> {
  const account = await deps.accounts.find(subject.subject);
  if (!account) throw new InvalidRequestError('the user of subject_token no longer exists');
  if (account.disabled) throw new InvalidRequestError('the user of subject_token is deactivated');
  if (policy.users && !policy.users.some((entry) => userMatches(entry, account))) {
    throw new InvalidRequestError(`this client may not act for ${account.sub} (token_exchange.users)`);
  }
  return account;
}

function userMatches(entry: string, account: Account): boolean {
  const email = account.email?.toLowerCase();
  const wanted = entry.toLowerCase();
  if (entry.startsWith('@')) return email !== undefined && email.endsWith(wanted);
  return entry === account.sub || entry === account.username || (email !== undefined && wanted === email);
}

/**
 * RFC 8693 §2.1 resource/audience (RFC 8707): each must be a resource of this
 * registry, within the agent's allowance, and within the subject token's own
 * audience (an exchange narrows, never widens).
 */
function targetResources(deps: TokenDeps, params: Params, policy: TokenExchangePolicy, subject: Principal): string[] {
  const allowance = deps.resources.listed(policy.resources);
  const asked = [...params.resource, ...params.audience];
  if (!asked.length && allowance.length !== 1) throw new InvalidTargetError(`name the resource the token is for (one of ${allowance.join(', ')})`);
  const resource = deps.resources.validate(asked.length ? asked : allowance);
  const outside = resource.filter((r) => !ResourceSpace.covers(allowance, r));
  if (outside.length) throw new InvalidTargetError(`this client may not obtain tokens for ${outside.join(', ')} (token_exchange.resources)`);
  const beyond = resource.filter((r) => !ResourceSpace.covers(subject.audience ?? [], r));
  if (beyond.length) throw new InvalidTargetError(`subject_token was not issued for ${beyond.join(', ')}: an exchange never widens the user's token`);
  return resource;
}

/**
 * RFC 8693 §2.1 scope: never wider than the user's token, than what the user
 * holds now, or than the agent's configured scopes. No offline_access: no
 * refresh token is issued.
 */
function exchangedScope(deps: TokenDeps, client: Client, params: Params, subject: Principal, account: Account, resource: string[]): string {
  const clientScopes = client.scope === undefined ? undefined : parseScope(client.scope);
  const ceiling = subject.scopes.filter((s) => s !== 'offline_access' && account.scopes.includes(s) && (clientScopes === undefined || clientScopes.includes(s)));
  const asked = params.scope === undefined ? ceiling : parseScope(params.scope);
  const wider = asked.filter((s) => !ceiling.includes(s));
  if (wider.length) throw new InvalidScopeError(`the exchanged token cannot carry ${wider.join(' ')} (the most it may carry: ${ceiling.join(' ') || 'none'})`);
  return withoutUnaskedAdmin(asked, params.scope, resource, deps.resources.base).join(' ');
}

export async function tokenExchange(deps: TokenDeps, req: Request, res: Response): Promise<void> {
  const params = parse(tokenExchangeGrant, req.body);
  const client = await authenticateClient(deps.clients, { authorization: req.headers.authorization, ...params });
  const policy = checkAllowed(client);
  checkRequestedType(params);
  const subject = await checkSubjectToken(deps, params);
  await checkActorToken(deps, params, client);
  const account = await checkUser(deps, subject, policy);
  const resource = targetResources(deps, params, policy, subject);
  const scope = exchangedScope(deps, client, params, subject, account, resource);

  // Short-lived, and never past the user's own token.
  const lifetime = Math.min(policy.lifetime, (subject.expiresAt ?? epoch()) - epoch());
  // Part of the user's grant: when it ends (a replay, revocation, deactivation), the agent's token ends with it.
  const grant = subject.grant ?? randomUUID();
  const access = await deps.grants.accessToken({ user: account, clientId: client.client_id, scope, resource, grant }, { claims: { act: { sub: client.client_id } }, lifetime });
  deps.log.info('client %s exchanged a token of %s for %s', client.client_id, account.sub, resource.join(' '));
  // RFC 8693 §2.2.1: issued_token_type is REQUIRED; no refresh token (the agent exchanges again).
  tokenResponse(res, { access_token: access.token, issued_token_type: TOKEN_TYPE.access_token, token_type: 'Bearer', expires_in: access.expiresIn, scope });
}
