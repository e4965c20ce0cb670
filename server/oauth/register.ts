import { randomBytes, randomUUID } from 'node:crypto';
import express, { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { InvalidClientMetadataError, InvalidRedirectUriError, TemporarilyUnavailableError, TooManyRequestsError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { AUTH_METHODS, hashSecret, type ClientRegistry } from './clients.ts';
import { LOOPBACK_HOSTS, parseRedirectUri, redirectUriMatches, redirectUriProblem } from './redirect-uri.ts';
import { epoch } from './grants.ts';
import { clientAddress } from '../http/client-address.ts';
import { addressKey, type EventWindow, isLoopback, SlidingWindow } from './throttle.ts';

// RFC 7591: dynamic client registration, what VS Code and Cursor use today.
// Unknown metadata is ignored (§2), so nothing an admin decides (such as
// resource_server) can be registered; known metadata is validated strictly.
//
// Anyone may register, so registration is bounded (oauth_server.registration):
// per address (429, RFC 6585), in number (503 once max_clients are held), in
// size (what is stored: at most MAX_REDIRECT_URIS redirect URIs of at most
// MAX_REDIRECT_URI_LENGTH characters, a 200-character name), and in time: a
// client no code was ever issued to is deleted after unused_client_ttl.

export const MAX_REDIRECT_URIS = 10;
// 256 characters, as Microsoft Entra allows; ten URIs cover every editor we know of (VS Code registers four).
export const MAX_REDIRECT_URI_LENGTH = 256;

const registration = z.object({
  redirect_uris: z
    .array(z.string().max(MAX_REDIRECT_URI_LENGTH, `a redirect URI may have at most ${MAX_REDIRECT_URI_LENGTH} characters`))
    .min(1, 'redirect_uris needs at least one URI')
    .max(MAX_REDIRECT_URIS, `at most ${MAX_REDIRECT_URIS} redirect URIs may be registered`),
  token_endpoint_auth_method: z.enum(AUTH_METHODS, { error: `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}` }).default('client_secret_basic'),
  grant_types: z
    .array(z.enum(['authorization_code', 'refresh_token'], { error: 'grant_types may hold authorization_code and refresh_token' }))
    .default(['authorization_code']),
  response_types: z.array(z.literal('code', { error: 'response_types may only hold code' })).default(['code']),
  client_name: z.string().max(200).optional(),
  client_uri: z.url().optional(),
  logo_uri: z.url().optional(),
  scope: z.string().max(1000).optional(),
  contacts: z.array(z.string().max(320)).max(10).optional(),
  tos_uri: z.url().optional(),
  policy_uri: z.url().optional(),
  software_id: z.string().max(200).optional(),
  software_version: z.string().max(100).optional(),
  application_type: z.enum(['web', 'native']).optional(),
});

function isWebRedirect(uri: string): boolean {
  const url = parseRedirectUri(uri)!;
  return url.protocol === 'https:' && !LOOPBACK_HOSTS.has(url.hostname);
}

export interface RegisterDeps {
  scopesSupported: string[];
  clients: ClientRegistry;
  allowedRedirectUris: string[];
  limits: Config['oauth_server']['registration'];
  /** Where registrations are counted (default: this process; the store when instances share it). */
  counts?: EventWindow;
  log: Logger;
}

export function registerRouter(deps: RegisterDeps): Router {
  const router = Router();
  const { limits } = deps;
  const perAddress = { max: limits.rate_limit.per_address, windowSeconds: limits.rate_limit.window };
  const recent = deps.counts ?? new SlidingWindow();

  /** RFC 6585 §4: this address registered its share for now. */
  async function checkRate(address: string): Promise<void> {
    const wait = await recent.retryAfter(address, perAddress);
    if (wait > 0) throw new TooManyRequestsError(`too many registrations from this address; try again in ${wait} s`, { retryAfter: wait });
  }

  /** The store holds max_clients dynamic clients: none more until unused ones expire or an admin deletes some. */
  async function checkCapacity(): Promise<void> {
    const held = await deps.clients.countDynamic();
    if (held < limits.max_clients) return;
    deps.log.warn('dynamic registration refused: %d clients registered, the most oauth_server.registration.max_clients allows', held);
    throw new TemporarilyUnavailableError('this registry holds as many registered clients as it allows; try again later, or ask an admin for a client');
  }

  router.post('/register', express.json({ limit: '16kb' }), async (req, res) => {
    // Loopback callers are counted only with rate_limit.loopback (see the config section).
    const from = clientAddress(req);
    const address = limits.rate_limit.loopback || !isLoopback(from) ? addressKey(from) : undefined;
    if (address !== undefined) await checkRate(address);
    const parsed = registration.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.');
      if (field.startsWith('redirect_uris')) throw new InvalidRedirectUriError(issue.message);
      throw new InvalidClientMetadataError(`${field ? `${field}: ` : ''}${issue.message}`);
    }
    const meta = parsed.data;
    for (const uri of meta.redirect_uris) {
      const problem = redirectUriProblem(uri);
      if (problem) throw new InvalidRedirectUriError(problem);
      // OpenID Connect Registration §2: a web client redirects to https hosts,
      // never to loopback or an app scheme; a native one may use either.
      if (meta.application_type === 'web' && !isWebRedirect(uri)) {
        throw new InvalidRedirectUriError(`${uri}: a client with application_type web must use https redirect URIs on a non-loopback host`);
      }
      if (deps.allowedRedirectUris.length && !deps.allowedRedirectUris.some((allowed) => redirectUriMatches(allowed, uri))) {
        throw new InvalidRedirectUriError(`${uri} is not in this server's allowed_redirect_uris`);
      }
    }
    // Refresh tokens come with the code grant here (public clients rotate them),
    // so a client that registered only authorization_code is told it has both.
    const grantTypes = [...new Set([...meta.grant_types, ...(meta.grant_types.includes('authorization_code') ? ['refresh_token' as const] : [])])];
    // A registered scope is what the client may later ask for: keep only what this server knows.
    const scope = meta.scope === undefined ? undefined : meta.scope.split(' ').filter((s) => deps.scopesSupported.includes(s) || s === 'offline_access').join(' ');
    // Counted from here on, refused for capacity or not: a full registry is no cheaper to hammer.
    if (address !== undefined) await recent.record(address, perAddress);
    await checkCapacity();
    const clientId = randomUUID();
    const secret = meta.token_endpoint_auth_method === 'none' ? undefined : randomBytes(32).toString('base64url');
    const issuedAt = epoch();
    await deps.clients.register({
      client_id: clientId,
      client_name: meta.client_name,
      redirect_uris: meta.redirect_uris,
      token_endpoint_auth_method: meta.token_endpoint_auth_method,
      client_secret_hash: secret === undefined ? undefined : hashSecret(secret),
      grant_types: grantTypes,
      response_types: meta.response_types,
      scope: scope || undefined,
      application_type: meta.application_type,
      client_id_issued_at: issuedAt,
      source: 'dynamic',
    }, issuedAt + limits.unused_client_ttl);
    deps.log.info('registered client %s (%s)', clientId, meta.client_name ?? 'unnamed');
    res
      .status(201)
      .set('Cache-Control', 'no-store')
      .json({
        ...meta,
        ...(meta.scope !== undefined && { scope }),
        grant_types: grantTypes,
        client_id: clientId,
        client_id_issued_at: issuedAt,
        ...(secret !== undefined && { client_secret: secret, client_secret_expires_at: 0 }),
      });
  });
  return router;
}
