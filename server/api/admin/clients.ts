import { randomBytes, randomUUID } from 'node:crypto';
import { type Request, Router } from 'express';
import { z } from 'zod';
import type { Switch } from '../../catalog/access.ts';
import { InvalidRequestError, NotFoundError } from '../../http/errors.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangePolicy } from '../../config/sections/oauth-server.ts';
import { AUTH_METHODS, type Client, type clientSchema, hashSecret } from '../../oauth/clients.ts';
import { redirectUriProblem } from '../../oauth/redirect-uri.ts';
import type { Principal } from '../../inbound/principal.ts';
import { ConflictError, epoch, parseInput } from '../http.ts';
import { type AdminDeps, flip, noStore, switchBody, switchView } from './deps.ts';

// /api/v1/admin/clients: the OAuth clients of the registry's authorization
// server. Built-in clients (the extension, the registry's own pages), those of
// the configuration file and Client ID Metadata Document clients are listed
// read-only; dynamically registered (RFC 7591) and admin-created ones can be
// edited and deleted. A client secret is made here, shown once in the answer
// that made it, and kept only as its SHA-256 (as RFC 7591 registration does).
//
// resource_server: an admin allows a confidential client to introspect tokens
// (RFC 7662 §4), the only way a client gets that (never RFC 7591 registration).
//
// Break-glass: disabling a client (any source) refuses it at /oauth/authorize
// and /oauth/token (no new tokens, no refresh), makes introspection call its
// tokens inactive, and refuses its unexpired access tokens on the next MCP or
// API request. Nothing is deleted; enabling restores it.

type StoredClient = z.infer<typeof clientSchema>;

/** Grants an admin-created client may be allowed (RFC 8693 token exchange: its token_exchange permission, which implies the grant). */
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

const scopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected a scope token (RFC 6749 §3.3)');

/** The editable fields (PUT replaces them; PATCH changes those given). */
const editable = {
  name: z.string().trim().min(1, 'a client needs a name').max(200),
  redirect_uris: z.array(z.string()).max(50),
  grant_types: z.array(z.enum(GRANT_TYPES, { error: `grant_types may hold ${GRANT_TYPES.join(', ')}` })).min(1, 'a client needs at least one grant type'),
  /** Omitted: the client may ask for any scope the server supports. */
  scopes: z.array(scopeToken).min(1, 'omit scopes to allow every supported scope').optional(),
  application_type: z.enum(['web', 'native']).optional(),
  /** RFC 7662 §4: a protected resource that may introspect tokens; confidential clients only. */
  resource_server: z.boolean().optional(),
  /** RFC 8693: the client (an agent) may exchange a user's token for one acting as them: as oauth_server.clients[].token_exchange; null removes it. */
  token_exchange: tokenExchangePolicy.nullable().optional(),
  disabled: z.boolean().optional(),
};

const createBody = z.strictObject({
  client_id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/, 'expected 1-128 letters, digits and . _ ~ - (default: a generated UUID)')
    .optional(),
  /** none: a public client (PKCE only); client_secret_basic / client_secret_post: a confidential one, which gets a secret. */
  token_endpoint_auth_method: z.enum(AUTH_METHODS, { error: `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}` }).default('client_secret_basic'),
  ...editable,
  redirect_uris: editable.redirect_uris.default([]),
  grant_types: editable.grant_types.default(['authorization_code', 'refresh_token']),
});

const replaceBody = createBody.extend({ token_endpoint_auth_method: createBody.shape.token_endpoint_auth_method.unwrap().optional() });
const patchBody = z.strictObject({ ...editable }).partial();

type Editable = {
  name: string;
  redirect_uris: string[];
  grant_types: string[];
  scopes?: string[] | undefined;
  application_type?: 'web' | 'native' | undefined;
  resource_server?: boolean | undefined;
  token_exchange?: z.infer<typeof tokenExchangePolicy> | null | undefined;
};

/** What the record keeps of a token_exchange permission, and the grant types it implies. */
function exchangeFields(c: Editable): Pick<StoredClient, 'grant_types' | 'token_exchange'> {
  const te = c.token_exchange ?? undefined;
  return {
    grant_types: te ? [...new Set([...c.grant_types, TOKEN_EXCHANGE_GRANT])] : c.grant_types.filter((g) => g !== TOKEN_EXCHANGE_GRANT),
    token_exchange: te && { resources: te.resources, ...(te.users && { users: te.users }), lifetime: te.token_lifetime },
  };
}

/** Rules across fields, and against the server: each problem names its field. */
function checkClient(deps: AdminDeps, c: Editable, authMethod: string): void {
  // RFC 6749 §4.4: the client speaks for itself, so it must be able to prove who it is.
  if (c.grant_types.includes('client_credentials') && authMethod === 'none') throw new InvalidRequestError('grant_types: client_credentials is for confidential clients (token_endpoint_auth_method client_secret_basic or client_secret_post)');
  // RFC 7662 §2.1: the introspection endpoint authenticates its callers.
  if (c.resource_server && authMethod === 'none') throw new InvalidRequestError('resource_server: a resource server authenticates to introspect, so it must be a confidential client (token_endpoint_auth_method client_secret_basic or client_secret_post)');
  // RFC 8693 §2.1: the exchange authenticates the client.
  if (c.token_exchange && authMethod === 'none') throw new InvalidRequestError('token_exchange: an agent that acts for users authenticates, so it must be a confidential client (token_endpoint_auth_method client_secret_basic or client_secret_post)');
  c.redirect_uris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri);
    if (problem) throw new InvalidRequestError(`redirect_uris.${i}: ${problem}`);
  });
  if (c.grant_types.includes('authorization_code') && !c.redirect_uris.length) throw new InvalidRequestError('redirect_uris: the authorization_code grant needs at least one redirect URI');
  const supported = new Set([...deps.config.oauth_server.scopes_supported, 'offline_access']);
  c.scopes?.forEach((s, i) => {
    if (!supported.has(s)) throw new InvalidRequestError(`scopes.${i}: "${s}" is not a scope this server supports (${[...supported].join(', ')})`);
  });
}

/** A client's token_exchange permission as the API shows it (the file's, or the admin API's). */
function exchangeOf(c: Client): { resources: string[]; users?: string[]; token_lifetime: number } | undefined {
  const te = c.tokenExchange ?? c.token_exchange;
  return te && { resources: te.resources, ...(te.users && { users: te.users }), token_lifetime: te.lifetime };
}

function readOnly(c: Client): boolean {
  return c.source !== 'admin' && c.source !== 'dynamic';
}

function view(c: Client, s: Switch | undefined) {
  const scopes = c.scope?.split(' ').filter(Boolean);
  return {
    client_id: c.client_id,
    name: c.client_name ?? null,
    source: c.source,
    read_only: readOnly(c),
    type: c.token_endpoint_auth_method === 'none' ? ('public' as const) : ('confidential' as const),
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    redirect_uris: c.redirect_uris,
    grant_types: c.grant_types,
    ...(scopes?.length && { scopes }),
    ...(c.application_type !== undefined && { application_type: c.application_type }),
    resource_server: c.resource_server === true,
    ...(exchangeOf(c) && { token_exchange: exchangeOf(c) }),
    disabled: s?.disabled ?? false,
    ...(c.client_id_issued_at > 0 && { created_at: c.client_id_issued_at }),
    ...('updated_at' in c && c.updated_at !== undefined && { updated_at: c.updated_at }),
    ...('created_by' in c && c.created_by !== undefined && { created_by: c.created_by }),
    ...(s && { switch: switchView(s) }),
  };
}

/** The client as `GET /admin/clients/{client_id}` answers it (the audit's before and after), or undefined. */
export async function describeClient(deps: AdminDeps, id: string) {
  const client = await deps.clients.known(id);
  return client && view(client, await deps.catalog.switches.find(`client:${client.client_id}`));
}

/** `POST /admin/clients/{id}`-style ids may be URLs (metadata documents): callers percent-encode them. */
const location = (req: Request, id: string) => `${req.baseUrl}/clients/${encodeURIComponent(id)}`;

async function find(deps: AdminDeps, id: string): Promise<Client> {
  const client = await deps.clients.known(id);
  if (!client) throw new NotFoundError(`there is no client "${id}"`);
  return client;
}

async function stored(deps: AdminDeps, id: string): Promise<StoredClient> {
  const client = await find(deps, id);
  if (readOnly(client)) {
    const why = client.source === 'config' ? 'is defined in the configuration file; change the file' : client.source === 'builtin' ? 'is built into the registry' : 'is described by its metadata document';
    throw new ConflictError(`client "${id}" ${why} and is read-only here (break-glass disable/enable works)`);
  }
  return client as StoredClient;
}

/** Locking yourself out: the admin's own token came from this client. */
function notMine(me: Principal, id: string, what: string): void {
  if (me.provider === 'registry' && me.clientId === id) throw new ConflictError(`you cannot ${what} the client your own token was issued to; use another client or ask another admin`);
}

async function describe(deps: AdminDeps, client: Client) {
  return view(client, await deps.catalog.switches.find(`client:${client.client_id}`));
}

/**
 * Flip the switch and wait until the request path holds it. Disabling ends
 * every grant the client holds (its access tokens are refused from the
 * next request on, its refresh tokens are gone): enabling it again lets its
 * users sign in anew, and brings nothing back.
 */
async function setDisabled(deps: AdminDeps, me: Principal, id: string, disabled: boolean, reason: string | undefined): Promise<number> {
  if (disabled) notMine(me, id, 'disable');
  await flip(deps, `client:${id}`, disabled, me.subject, reason);
  const ended = disabled ? await deps.grants.endClient(id) : 0;
  await deps.breakGlass.settled();
  return ended;
}

/** Every client, as `GET /admin/clients` lists them: built-in and configured first, then stored ones by age, then metadata-document ones. */
export async function listClients(deps: AdminDeps, source?: Client['source']) {
  const switches = new Map((await deps.catalog.switches.all()).filter(([id]) => id.startsWith('client:')).map(([id, s]) => [id.slice('client:'.length), s]));
  const all: Client[] = [...deps.clients.staticClients(), ...(await deps.clients.records.all()).map(([, c]) => c).sort((a, b) => a.client_id_issued_at - b.client_id_issued_at), ...deps.clients.metadataDocumentClients()];
  return all.filter((c) => source === undefined || c.source === source).map((c) => view(c, switches.get(c.client_id)));
}

/** Break-glass on a client (any source): effective on the next request; disabling ends its grants. */
export async function switchClient(deps: AdminDeps, me: Principal, id: string, disabled: boolean, reason: string | undefined) {
  const client = await find(deps, id);
  await setDisabled(deps, me, client.client_id, disabled, reason);
  return describe(deps, client);
}

/** A new secret for a confidential client: the old one stops working at once. The secret is in this answer only. */
export async function newClientSecret(deps: AdminDeps, me: Principal, id: string) {
  const current = await stored(deps, id);
  if (current.token_endpoint_auth_method === 'none') throw new ConflictError(`client "${current.client_id}" is public (token_endpoint_auth_method none) and has no secret`);
  const secret = randomBytes(32).toString('base64url');
  await deps.clients.records.update(current.client_id, (record) => record && { ...record, client_secret_hash: hashSecret(secret), updated_at: epoch() });
  deps.log.info('admin %s made a new secret for client %s', me.subject, current.client_id);
  return { ...(await describe(deps, await find(deps, current.client_id))), client_secret: secret, client_secret_expires_at: 0 };
}

export function clientRoutes(deps: AdminDeps): Router {
  const router = Router();
  const { clients } = deps;

  router.get('/clients', async (req, res) => {
    const { source } = parseInput(z.strictObject({ source: z.enum(['builtin', 'config', 'dynamic', 'admin', 'metadata_document']).optional() }), req.query, 'query');
    res.set(noStore).json({ clients: await listClients(deps, source) });
  });

  router.get('/clients/:id', async (req, res) => {
    res.set(noStore).json(await describe(deps, await find(deps, req.params.id)));
  });

  router.post('/clients', async (req, res) => {
    const input = parseInput(createBody, req.body);
    checkClient(deps, input, input.token_endpoint_auth_method);
    const clientId = input.client_id ?? randomUUID();
    if (await clients.known(clientId)) throw new ConflictError(`there is already a client "${clientId}"`);
    const secret = input.token_endpoint_auth_method === 'none' ? undefined : randomBytes(32).toString('base64url');
    const now = epoch();
    await clients.register({
      client_id: clientId,
      client_name: input.name,
      redirect_uris: input.redirect_uris,
      token_endpoint_auth_method: input.token_endpoint_auth_method,
      client_secret_hash: secret === undefined ? undefined : hashSecret(secret),
      ...exchangeFields(input),
      response_types: input.grant_types.includes('authorization_code') ? ['code'] : [],
      scope: input.scopes?.join(' '),
      application_type: input.application_type,
      ...(input.resource_server && { resource_server: true }),
      client_id_issued_at: now,
      updated_at: now,
      created_by: req.principal!.subject,
      source: 'admin',
    });
    // A switch left by a deleted client of the same id must not carry over, unless asked for.
    if (input.disabled || (await deps.catalog.switches.find(`client:${clientId}`))) await setDisabled(deps, req.principal!, clientId, input.disabled === true, undefined);
    deps.log.info('admin %s created client %s (%s)', req.principal!.subject, clientId, input.name);
    const created = await describe(deps, await find(deps, clientId));
    // The secret is shown here, once; only its hash is kept.
    res
      .status(201)
      .set(noStore)
      .location(location(req, clientId))
      .json({ ...created, ...(secret !== undefined && { client_secret: secret, client_secret_expires_at: 0 }) });
  });

  async function update(req: Request<{ id: string }>, current: StoredClient, next: Editable & { disabled?: boolean | undefined }) {
    checkClient(deps, next, current.token_endpoint_auth_method);
    // An admin's edit keeps a registered client: it no longer expires for lack of use (a resource server never gets a code).
    await clients.records.update(current.client_id, (record) =>
      record && {
        ...record,
        client_name: next.name,
        redirect_uris: next.redirect_uris,
        ...exchangeFields(next),
        response_types: next.grant_types.includes('authorization_code') ? ['code'] : [],
        scope: next.scopes?.join(' '),
        application_type: next.application_type,
        resource_server: next.resource_server || undefined,
        updated_at: epoch(),
      },
      null,
    );
    if (next.disabled !== undefined) await setDisabled(deps, req.principal!, current.client_id, next.disabled, undefined);
    return describe(deps, await find(deps, current.client_id));
  }

  router.put('/clients/:id', async (req, res) => {
    const current = await stored(deps, req.params.id);
    const input = parseInput(replaceBody, req.body);
    if (input.client_id !== undefined && input.client_id !== current.client_id) throw new InvalidRequestError(`client_id: the id is "${current.client_id}" (the URL's) and cannot be changed`);
    if (input.token_endpoint_auth_method !== undefined && input.token_endpoint_auth_method !== current.token_endpoint_auth_method) {
      throw new InvalidRequestError(`token_endpoint_auth_method: this client uses ${current.token_endpoint_auth_method}; create a new client to change how it authenticates`);
    }
    res.set(noStore).json(await update(req, current, input));
  });

  router.patch('/clients/:id', async (req, res) => {
    const current = await stored(deps, req.params.id);
    const input = parseInput(patchBody, req.body);
    const scopes = current.scope?.split(' ').filter(Boolean);
    res.set(noStore).json(
      await update(req, current, {
        name: input.name ?? current.client_name ?? current.client_id,
        redirect_uris: input.redirect_uris ?? current.redirect_uris,
        grant_types: input.grant_types ?? current.grant_types,
        scopes: 'scopes' in input ? input.scopes : scopes?.length ? scopes : undefined,
        application_type: input.application_type ?? current.application_type,
        resource_server: input.resource_server ?? current.resource_server,
        token_exchange: 'token_exchange' in input ? input.token_exchange : current.token_exchange && { resources: current.token_exchange.resources, users: current.token_exchange.users, token_lifetime: current.token_exchange.lifetime },
        disabled: input.disabled,
      }),
    );
  });

  router.post('/clients/:id/secret', async (req, res) => {
    // Which client first (404, 409), then the body.
    await stored(deps, req.params.id);
    parseInput(z.strictObject({}), req.body);
    res.set(noStore).json(await newClientSecret(deps, req.principal!, req.params.id));
  });

  // Deleting ends its grants, and a disabled switch keeps a new client of the same id from inheriting anything.
  router.delete('/clients/:id', async (req, res) => {
    const current = await stored(deps, req.params.id);
    notMine(req.principal!, current.client_id, 'delete');
    await clients.records.destroy(current.client_id);
    const ended = await setDisabled(deps, req.principal!, current.client_id, true, 'deleted');
    deps.log.info('admin %s deleted client %s (%d refresh token(s) ended)', req.principal!.subject, current.client_id, ended);
    res.status(204).end();
  });

  // Break-glass: effective on the next request; the client's grants end.
  for (const action of ['disable', 'enable'] as const) {
    router.post(`/clients/:id/${action}`, async (req, res) => {
      await find(deps, req.params.id);
      const { reason } = parseInput(switchBody, req.body);
      res.set(noStore).json(await switchClient(deps, req.principal!, req.params.id, action === 'disable', reason));
    });
  }

  return router;
}
