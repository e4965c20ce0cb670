import express, { Router } from 'express';
import { z } from 'zod';
import { AccessDeniedError, InvalidRequestError, KeygateError, UnsupportedResponseTypeError } from '../http/errors.ts';
import { sendErrorPage } from '../http/html.ts';
import { acceptsRedirectUri, type Client } from './clients.ts';
import type { AuthorizationFlow } from './flow.ts';
import type { Interaction } from './interaction.ts';
import { grantScope } from './scope.ts';

// RFC 6749 §4.1.1 / OAuth 2.1 §4.1.1: the authorization endpoint, as a list of
// small steps in the order the spec processes a request. Until the client and
// its redirect URI are known to be good, errors are shown as a page and never
// redirected (§4.1.2.1); after that, they go back to the client. A good
// request becomes an interaction: sign in, consent, code.

// A single-valued parameter: absent, or one string; repeated is an error (RFC 6749 §3.1).
const single = (name: string) =>
  z.string({ error: `${name} must not be repeated (RFC 6749 §3.1)` }).optional();

// Client input is parsed strictly, but unknown parameters are ignored as RFC 6749 §3.1 requires.
const authorizeParams = z.object({
  client_id: single('client_id'),
  redirect_uri: single('redirect_uri'),
  response_type: single('response_type'),
  state: single('state'),
  scope: single('scope'),
  code_challenge: single('code_challenge'),
  code_challenge_method: single('code_challenge_method'),
  prompt: single('prompt'),
  resource: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])),
});
type AuthorizeParams = z.infer<typeof authorizeParams>;

/** An error to send back to the client's redirect URI (RFC 6749 §4.1.2.1). */
export class RedirectableError {
  constructor(
    readonly error: KeygateError,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {}
}

async function checkClientAndRedirect(flow: AuthorizationFlow, params: AuthorizeParams): Promise<{ client: Client; redirectUri: string }> {
  if (!params.client_id) throw new InvalidRequestError('client_id is missing');
  const client = await flow.deps.clients.find(params.client_id);
  if (!client) throw new InvalidRequestError('the client_id is not registered with this server');
  if (await flow.deps.clients.disabled(client.client_id)) throw new InvalidRequestError('this client is disabled by an admin');
  let redirectUri = params.redirect_uri;
  if (redirectUri === undefined) {
    // OAuth 2.1 §4.1.1: may be omitted only when exactly one is registered.
    if (client.redirect_uris.length !== 1 || client.acceptsRedirect) throw new InvalidRequestError('redirect_uri is missing');
    redirectUri = client.redirect_uris[0]!;
  }
  if (!acceptsRedirectUri(client, redirectUri)) throw new InvalidRequestError('the redirect_uri is not registered for this client');
  return { client, redirectUri };
}

function checkResponseType(params: AuthorizeParams): void {
  if (params.response_type === undefined) throw new InvalidRequestError('response_type is missing');
  if (params.response_type !== 'code') throw new UnsupportedResponseTypeError('only response_type=code is supported');
}

// RFC 7636 §4.3 and OAuth 2.1 §4.1.1: PKCE is required, and only S256.
function checkPkce(params: AuthorizeParams): string {
  if (!params.code_challenge) throw new InvalidRequestError('code_challenge is required (PKCE, RFC 7636)');
  if (params.code_challenge_method === undefined) {
    throw new InvalidRequestError('code_challenge_method is required and must be S256 (a missing method means plain, which is not allowed)');
  }
  if (params.code_challenge_method !== 'S256') throw new InvalidRequestError('code_challenge_method must be S256; plain is not allowed');
  // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
  if (!/^[A-Za-z0-9_-]{43}$/.test(params.code_challenge)) throw new InvalidRequestError('code_challenge is not a base64url SHA-256 digest');
  return params.code_challenge;
}

function checkClientScope(client: Client, scope: string): void {
  // A client registered (or configured) with a scope may not ask for more.
  if (client.scope === undefined) return;
  const allowed = new Set([...client.scope.split(' '), 'offline_access']);
  const extra = scope.split(' ').filter((s) => s && !allowed.has(s));
  if (extra.length) throw new AccessDeniedError(`this client may not ask for ${extra.join(' ')}`);
}

async function validate(flow: AuthorizationFlow, raw: unknown): Promise<{ client: Client; request: Omit<Interaction, 'id' | 'csrf' | 'binding' | 'bound' | 'created_at'> }> {
  const parsed = authorizeParams.safeParse(raw);
  if (!parsed.success) throw new InvalidRequestError(parsed.error.issues[0]!.message);
  const params = parsed.data;
  const { client, redirectUri } = await checkClientAndRedirect(flow, params);
  try {
    checkResponseType(params);
    const codeChallenge = checkPkce(params);
    const scope = grantScope(params.scope, flow.deps.scopesSupported, undefined);
    checkClientScope(client, scope);
    const { resources } = flow.deps;
    // Whether the gateway exists is said only once someone has signed in (Flow.next): an anonymous
    // caller must not be able to tell a private gateway from none.
    const resource = resources.validate(params.resource.length ? params.resource : [resources.base], { existing: false });
    const prompt = (params.prompt ?? '').split(' ').filter(Boolean);
    if (prompt.includes('none') && prompt.length > 1) throw new InvalidRequestError('prompt=none cannot be combined with other values');
    return {
      client,
      request: { client_id: client.client_id, redirect_uri: redirectUri, state: params.state, scope: params.scope === undefined ? undefined : scope, code_challenge: codeChallenge, resource, prompt },
    };
  } catch (err) {
    if (err instanceof KeygateError) throw new RedirectableError(err, redirectUri, params.state);
    throw err;
  }
}

export function authorizeRouter(flow: AuthorizationFlow): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  router.get('/authorize', async (req, res) => {
    let validated;
    try {
      validated = await validate(flow, req.query);
    } catch (err) {
      if (err instanceof RedirectableError) return void res.redirect(302, flow.errorRedirect(err));
      if (err instanceof KeygateError) return sendErrorPage(res, err.status, 'This sign-in link cannot be used', err.message);
      throw err;
    }
    const interaction = await flow.deps.interactions.create(req, res, validated.request);
    await flow.begin(req, res, interaction, validated.client);
  });

  // The current step of an interaction (after a redirect: post/redirect/get).
  router.get('/interaction/:id', async (req, res) => {
    const found = await flow.load(req.params.id);
    if (!found) return sendErrorPage(res, 400, 'This sign-in has expired', 'Start again from your application.');
    await flow.next(req, res, found.interaction, found.client);
  });

  router.post('/interaction/:id/login', form, (req, res) => flow.login(req, res, req.params.id));
  router.post('/interaction/:id/consent', form, (req, res) => flow.consent(req, res, req.params.id));
  return router;
}

