import express, { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { InvalidRequestError, KeygateError, UnsupportedResponseTypeError } from '../http/errors.ts';
import { html, sendErrorPage, sendPage } from '../http/html.ts';
import type { Logger } from '../log.ts';
import { acceptsRedirectUri, type Client, type ClientRegistry } from './clients.ts';
import { epoch, type Grants } from './grants.ts';
import type { ResourceSpace } from './resource.ts';
import { grantScope } from './scope.ts';
import type { BuiltinUsers } from './users.ts';

// RFC 6749 §4.1.1 / OAuth 2.1 §4.1.1: the authorization endpoint, as a list of
// small steps in the order the spec processes a request. Until the client and
// its redirect URI are known to be good, errors are shown as a page and never
// redirected (§4.1.2.1); after that, they go back to the client.

export interface AuthorizeDeps {
  clients: ClientRegistry;
  users: BuiltinUsers;
  grants: Grants;
  resources: ResourceSpace;
  issuer: string;
  scopesSupported: string[];
  log: Logger;
}

const single = (name: string) =>
  z
    .union([z.string(), z.array(z.string())])
    .optional()
    .refine((v) => !Array.isArray(v), `${name} must not be repeated (RFC 6749 §3.1)`)
    .transform((v) => v as string | undefined);

// Client input is parsed strictly, but unknown parameters are ignored as RFC 6749 §3.1 requires.
const authorizeParams = z.object({
  client_id: single('client_id'),
  redirect_uri: single('redirect_uri'),
  response_type: single('response_type'),
  state: single('state'),
  scope: single('scope'),
  code_challenge: single('code_challenge'),
  code_challenge_method: single('code_challenge_method'),
  resource: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])),
});
type AuthorizeParams = z.infer<typeof authorizeParams>;

interface ValidRequest {
  client: Client;
  redirectUri: string;
  state: string | undefined;
  scope: string;
  codeChallenge: string;
  resource: string[];
  params: AuthorizeParams;
}

/** An error to send back to the client's redirect URI (RFC 6749 §4.1.2.1). */
class RedirectableError {
  constructor(
    readonly error: KeygateError,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {}
}

function checkClientAndRedirect(deps: AuthorizeDeps) {
  return async (params: AuthorizeParams): Promise<{ client: Client; redirectUri: string }> => {
    if (!params.client_id) throw new InvalidRequestError('client_id is missing');
    const client = await deps.clients.find(params.client_id);
    if (!client) throw new InvalidRequestError('the client_id is not registered with this server');
    let redirectUri = params.redirect_uri;
    if (redirectUri === undefined) {
      // OAuth 2.1 §4.1.1: may be omitted only when exactly one is registered.
      if (client.redirect_uris.length !== 1 || client.acceptsRedirect) throw new InvalidRequestError('redirect_uri is missing');
      redirectUri = client.redirect_uris[0]!;
    }
    if (!acceptsRedirectUri(client, redirectUri)) {
      throw new InvalidRequestError('the redirect_uri is not registered for this client');
    }
    return { client, redirectUri };
  };
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

function errorRedirect(deps: AuthorizeDeps, target: RedirectableError): string {
  const url = new URL(target.redirectUri);
  url.searchParams.set('error', target.error.code);
  url.searchParams.set('error_description', target.error.message);
  if (target.state !== undefined) url.searchParams.set('state', target.state);
  url.searchParams.set('iss', deps.issuer); // RFC 9207
  return url.toString();
}

async function validate(deps: AuthorizeDeps, raw: unknown): Promise<ValidRequest> {
  const parsed = authorizeParams.safeParse(raw);
  if (!parsed.success) throw new InvalidRequestError(parsed.error.issues[0]!.message);
  const params = parsed.data;
  const { client, redirectUri } = await checkClientAndRedirect(deps)(params);
  try {
    checkResponseType(params);
    const codeChallenge = checkPkce(params);
    const scope = grantScope(params.scope, deps.scopesSupported, undefined);
    const resource = deps.resources.validate(params.resource.length ? params.resource : [deps.resources.base]);
    return { client, redirectUri, state: params.state, scope, codeChallenge, resource, params };
  } catch (err) {
    if (err instanceof KeygateError) throw new RedirectableError(err, redirectUri, params.state);
    throw err;
  }
}

function hiddenFields(params: AuthorizeParams) {
  const fields: [string, string][] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) fields.push([name, v]);
  }
  return fields.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`);
}

function renderLogin(res: Response, request: ValidRequest, status = 200, error?: string, username = ''): void {
  const name = request.client.client_name ?? request.client.client_id;
  const host = new URL(request.redirectUri).host || new URL(request.redirectUri).protocol;
  sendPage(
    res,
    status,
    'Sign in',
    html`<h1>Sign in to Keygate</h1>
<p class="lead"><strong>${name}</strong> is asking to use your MCP servers.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="authorize">
${hiddenFields(request.params)}
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false" required${username ? '' : html` autofocus`}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${username ? html` autofocus` : ''}>
<button type="submit">Sign in</button>
</form>
<dl><dt>Returns to</dt><dd><code>${host}</code></dd>${request.scope ? html`<dt>Access</dt><dd>${request.scope}</dd>` : ''}</dl>`,
  );
}

export function authorizeRouter(deps: AuthorizeDeps): Router {
  const router = Router();

  const handle = async (req: Request, res: Response, input: unknown, login: boolean) => {
    let request: ValidRequest;
    try {
      request = await validate(deps, input);
    } catch (err) {
      if (err instanceof RedirectableError) {
        res.redirect(login ? 303 : 302, errorRedirect(deps, err));
        return;
      }
      if (err instanceof KeygateError) {
        sendErrorPage(res, err.status, 'This sign-in link cannot be used', err.message);
        return;
      }
      throw err;
    }
    if (!login) return renderLogin(res, request);

    const form = z.object({ username: z.string().max(256), password: z.string().max(1024) }).safeParse(req.body);
    const user = form.success ? await deps.users.verify(form.data.username, form.data.password) : undefined;
    if (!user) {
      // One message and one status for an unknown user and a wrong password: no enumeration.
      deps.log.info('sign-in failed for client %s', request.client.client_id);
      return renderLogin(res, request, 401, 'Wrong username or password.', form.success ? form.data.username : '');
    }
    const scope = grantScope(request.params.scope, deps.scopesSupported, user.scopes);
    const code = await deps.grants.issueCode({
      client_id: request.client.client_id,
      redirect_uri: request.redirectUri,
      code_challenge: request.codeChallenge,
      scope,
      resource: request.resource,
      sub: user.username,
      auth_time: epoch(),
    });
    const url = new URL(request.redirectUri);
    url.searchParams.set('code', code);
    if (request.state !== undefined) url.searchParams.set('state', request.state);
    url.searchParams.set('iss', deps.issuer); // RFC 9207: mix-up defence
    deps.log.info('signed in %s for client %s', user.username, request.client.client_id);
    res.set('Cache-Control', 'no-store').redirect(303, url.toString());
  };

  router.get('/authorize', (req, res) => handle(req, res, req.query, false));
  router.post('/authorize', express.urlencoded({ extended: false, limit: '16kb' }), (req, res) => handle(req, res, req.body, true));
  return router;
}

