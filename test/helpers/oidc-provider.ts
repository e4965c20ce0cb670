import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT, type JWTHeaderParameters, importJWK } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type ClientMetadata, type Configuration, type ResourceServer } from 'oidc-provider';
import { UserAgent } from './user-agent.ts';

// A real OpenID Connect provider (panva's oidc-provider) on port 0: the
// external identity provider of the tests. Its own minimal login page (a form
// with `login` and `password`, and a Cancel button that answers
// access_denied); consent is given automatically for what was asked. Access
// tokens are JWTs for resource indicators the test names (RFC 8707), opaque
// otherwise; introspection, userinfo and client credentials are on.

export interface IdpAccount {
  sub: string;
  password: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  groups?: string[];
  roles?: string[];
}

export interface IdpOptions {
  clients?: ClientMetadata[];
  accounts?: IdpAccount[];
  /** How a resource indicator is served; default: audience = the indicator, opaque tokens when it contains "opaque", JWTs otherwise. */
  resourceServer?: (indicator: string) => ResourceServer | undefined;
  alg?: 'RS256' | 'ES256';
  ttl?: Configuration['ttl'];
  /** Dynamic client registration (RFC 7591) at /reg. */
  registration?: boolean;
  /** Rotate refresh tokens on every use (a reused one then fails); default: oidc-provider's rule. */
  rotateRefreshToken?: boolean;
}

export interface TestIdp {
  issuer: string;
  provider: Provider;
  /** The private signing key (JWK with kid and alg) the IdP signs with now. */
  key: JWK;
  accounts: Map<string, IdpAccount>;
  /** Rewrite the JSON the token endpoint answers (to serve a tampered ID token, say). */
  onTokenResponse: ((body: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>) | undefined;
  /** Requests the IdP served, as "METHOD /path". */
  seen: string[];
  addClient(metadata: ClientMetadata): Promise<void>;
  /** Start signing with a new key (new kid); the old one leaves the JWKS. */
  rotateKeys(): Promise<JWK>;
  /** Sign arbitrary claims with the IdP's current key (for tokens the IdP would never issue). */
  sign(payload: JWTPayload, header?: Partial<JWTHeaderParameters>): Promise<string>;
  clientCredentialsToken(input: { clientId: string; clientSecret: string; resource?: string; scope?: string }): Promise<{ access_token: string; expires_in: number; scope?: string }>;
  /** The whole authorization code flow as a person, returning the token response. */
  userTokens(input: { clientId: string; clientSecret: string; redirectUri: string; login: string; password: string; scope: string; resource?: string }): Promise<Record<string, string | number>>;
  close(): Promise<void>;
}

/** One in-memory store per IdP instance, shared by its rotations. */
function mapAdapter(storage: Map<string, { payload: AdapterPayload; expiresAt: number }>) {
  return class MapAdapter implements Adapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    private live(key: string) {
      const entry = storage.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        storage.delete(key);
        return undefined;
      }
      return entry.payload;
    }
    private scan(match: (p: AdapterPayload) => boolean) {
      for (const [key] of storage) {
        if (!key.startsWith(`${this.model}:`)) continue;
        const payload = this.live(key);
        if (payload && match(payload)) return payload;
      }
      return undefined;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      storage.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    }
    async find(id: string) {
      return this.live(this.key(id));
    }
    async findByUid(uid: string) {
      return this.scan((p) => p.uid === uid);
    }
    async findByUserCode(userCode: string) {
      return this.scan((p) => p.userCode === userCode);
    }
    async consume(id: string) {
      const payload = this.live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      storage.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of storage) if (entry.payload.grantId === grantId) storage.delete(key);
    }
  };
}

async function signingKey(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `idp-${randomUUID().slice(0, 8)}`, alg, use: 'sig' };
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid: string, clientId: string, error?: string): string {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1><p>Sign in to continue to ${escape(clientId)}</p>${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<input name="login" type="text" autocomplete="username"><input name="password" type="password">
<button type="submit" name="action" value="login">Sign in</button>
<button type="submit" name="action" value="cancel">Cancel</button>
</form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startOidcProvider(options: IdpOptions = {}): Promise<TestIdp> {
  const alg = options.alg ?? 'RS256';
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const storage = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const accounts = new Map((options.accounts ?? []).map((a) => [a.sub, a]));
  const resourceServer =
    options.resourceServer ??
    ((indicator: string): ResourceServer =>
      // An indicator with "opaque" in it gets opaque access tokens (for introspection); any other, JWTs.
      indicator.includes('opaque')
        ? { scope: 'mcp:read mcp:write mcp:admin', audience: indicator, accessTokenFormat: 'opaque' }
        : { scope: 'mcp:read mcp:write mcp:admin', audience: indicator, accessTokenFormat: 'jwt', jwt: { sign: { alg } } });

  const build = (key: JWK) => {
    const configuration: Configuration = {
      adapter: mapAdapter(storage),
      clients: options.clients ?? [],
      jwks: { keys: [key as never] },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      // roles: released as Keycloak does, nested under realm_access (and flat, as other IdPs do).
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'], roles: ['roles', 'realm_access'] },
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'roles', 'mcp:read', 'mcp:write', 'mcp:admin'],
      findAccount: async (_ctx, sub) => {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          claims: async () => ({ sub, email: account.email, email_verified: account.email_verified, name: account.name, preferred_username: account.preferred_username, groups: account.groups, roles: account.roles, realm_access: account.roles && { roles: account.roles } }),
        };
      },
      extraTokenClaims: async (_ctx, token) => {
        const account = 'accountId' in token && token.accountId ? accounts.get(token.accountId) : undefined;
        if (!account) return undefined;
        return { email: account.email, groups: account.groups, roles: account.roles, name: account.name };
      },
      features: {
        devInteractions: { enabled: false },
        // Any authenticated client may introspect (the registry is one).
        introspection: { enabled: true, allowedPolicy: async () => true },
        revocation: { enabled: true },
        registration: { enabled: options.registration === true },
        clientCredentials: { enabled: true },
        userinfo: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async (_ctx, _client, oneOf) => oneOf ?? undefined,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx, indicator) => {
            const info = resourceServer(indicator);
            if (!info) throw new Error(`unknown resource ${indicator}`);
            return info;
          },
        },
      },
      pkce: { required: () => true },
      // Refresh tokens to every client allowed the grant (not only with offline_access and a consent prompt).
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      ...(options.rotateRefreshToken !== undefined && { rotateRefreshToken: options.rotateRefreshToken }),
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      ttl: { AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 600, Grant: 86400, IdToken: 3600, Interaction: 600, RefreshToken: 86400, Session: 86400, ...options.ttl },
      // Keep the provider's own logging quiet in test output.
      renderError: async (ctx, out) => {
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>IdP error</title><h1>${escape(String(out.error))}</h1><p>${escape(String(out.error_description ?? ''))}</p>`;
      },
    };
    const provider = new Provider(issuer, configuration);
    provider.on('server_error', () => undefined);
    return provider;
  };

  let key = await signingKey(alg);
  let provider = build(key);
  let callback = provider.callback();

  const idp: TestIdp = {
    issuer,
    get provider() {
      return provider;
    },
    get key() {
      return key;
    },
    accounts,
    onTokenResponse: undefined,
    seen: [],
    async addClient(metadata) {
      await (provider.Client as unknown as { adapter: Adapter }).adapter.upsert(metadata.client_id, metadata as unknown as AdapterPayload, 0);
    },
    async rotateKeys() {
      key = await signingKey(alg);
      provider = build(key);
      callback = provider.callback();
      return key;
    },
    async sign(payload, header = {}) {
      const privateKey = await importJWK(key, key.alg);
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg!, kid: key.kid, ...header }).sign(privateKey);
    },
    async clientCredentialsToken({ clientId, clientSecret, resource, scope }) {
      const body = new URLSearchParams({ grant_type: 'client_credentials' });
      if (resource) body.set('resource', resource);
      if (scope) body.set('scope', scope);
      const res = await fetch(`${issuer}/token`, { method: 'POST', body, headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` } });
      const json = (await res.json()) as { access_token: string; expires_in: number; scope?: string };
      if (res.status !== 200) throw new Error(`client credentials failed: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    async userTokens({ clientId, clientSecret, redirectUri, login, password, scope, resource }) {
      const verifier = randomBytes(32).toString('base64url');
      const authorize = new URL(`${issuer}/auth`);
      authorize.search = new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope,
        state: 'idp-state',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        ...(resource && { resource }),
      }).toString();
      const ua = new UserAgent();
      const atRedirect = (u: URL) => u.toString().startsWith(redirectUri);
      const page = await ua.follow(authorize, atRedirect);
      if (!page.response) throw new Error('the IdP redirected without a login page');
      const submitted = await ua.submit({ html: await page.response.text(), url: page.url }, { login, password }, { name: 'action', value: 'login' });
      const done = await ua.follow(page.url, atRedirect, submitted);
      const code = done.url.searchParams.get('code');
      if (!code) throw new Error(`no code from the IdP: ${done.url} ${done.response ? await done.response.text() : ''}`);
      const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
      if (resource) body.set('resource', resource);
      const res = await fetch(`${issuer}/token`, { method: 'POST', body, headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` } });
      const json = (await res.json()) as Record<string, string | number>;
      if (res.status !== 200) throw new Error(`code exchange failed: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    const clientId = String(details.params.client_id);
    if (action === 'login') {
      const form = await readForm(req);
      if (form.get('action') === 'cancel') {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the person cancelled the sign-in' }, { mergeWithLastSubmission: false });
        return;
      }
      const account = accounts.get(form.get('login') ?? '');
      if (!account || account.password !== form.get('password')) {
        res.writeHead(401, { 'content-type': 'text/html' }).end(loginPage(uid, clientId, 'Wrong login or password'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(loginPage(uid, clientId));
      return;
    }
    // Consent: grant what was asked.
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId: details.session!.accountId, clientId });
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    idp.seen.push(`${req.method} ${path}`);
    const match = /^\/interaction\/([^/]+)(?:\/(login))?$/.exec(path);
    if (match) {
      interaction(req, res, match[1]!, match[2]).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' }).end(`interaction failed: ${(err as Error).message}`);
      });
      return;
    }
    if (path === '/token' && idp.onTokenResponse) {
      const tamper = idp.onTokenResponse;
      const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
      (res as { end: unknown }).end = (chunk?: unknown, ...rest: unknown[]) => {
        if (res.statusCode !== 200 || chunk === undefined) return end(chunk, ...rest);
        void Promise.resolve(tamper(JSON.parse(String(chunk)) as Record<string, unknown>)).then((changed) => {
          const body = JSON.stringify(changed);
          res.setHeader('content-length', Buffer.byteLength(body));
          end(body);
        });
        return res;
      };
    }
    void callback(req, res);
  });

  return idp;
}

/** Sign a token with a key the IdP never published (a forgery). */
export async function foreignToken(payload: JWTPayload, header: Partial<JWTHeaderParameters> = {}, alg: 'RS256' | 'ES256' = 'RS256'): Promise<string> {
  const { privateKey } = await generateKeyPair(alg);
  return new SignJWT(payload).setProtectedHeader({ alg, ...header }).sign(privateKey);
}
