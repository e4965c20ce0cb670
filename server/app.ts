import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { apiV1Router } from './api/v1.ts';
import { CODES } from './catalog/failure.ts';
import type { Config } from './config/schema.ts';
import type { AuditSink } from './audit/audit.ts';
import { createControl } from './api/control.ts';
import { connectRouter } from './connect/router.ts';
import { consoleRouter } from './console/router.ts';
import { Capabilities } from './api/capabilities.ts';
import { CatalogHolder } from './catalog/catalog.ts';
import { endpointScopes } from './catalog/scopes.ts';
import { ListChanges } from './gateway/list-changes.ts';
import { mcpEndpoint } from './gateway/mcp-endpoint.ts';
import { SessionBinding } from './gateway/session-binding.ts';
import { errorMiddleware } from './http/error-middleware.ts';
import { Authenticator } from './inbound/authenticator.ts';
import { externalValidators } from './inbound/external.ts';
import { RegistryTokenValidator } from './inbound/registry-jwt.ts';
import { StaticBearerTokens } from './inbound/static-bearer.ts';
import type { Logger } from './log.ts';
import { outboundFetch, outboundPolicy } from './net/outbound.ts';
import { Accounts } from './oauth/accounts.ts';
import { authorizeRouter } from './oauth/authorize.ts';
import { BrowserSessions } from './oauth/browser-session.ts';
import { ClientMetadataDocuments } from './oauth/client-metadata-document.ts';
import { ClientRegistry, configuredClients } from './oauth/clients.ts';
import { federatedAccounts, federatedSignIn } from './oauth/federated/index.ts';
import { Consents } from './oauth/consents.ts';
import { AuthorizationFlow } from './oauth/flow.ts';
import { Grants } from './oauth/grants.ts';
import { Interactions } from './oauth/interaction.ts';
import { metadataRouter } from './oauth/metadata.ts';
import { registerRouter } from './oauth/register.ts';
import { ResourceSpace } from './oauth/resource.ts';
import { loadSharedKeyRing } from './oauth/shared-signing-keys.ts';
import { type KeyRing, loadKeyRing, type SigningKey } from './oauth/signing-keys.ts';
import { DEFAULT_THROTTLE, LoginThrottle, StoreWindow } from './oauth/throttle.ts';
import { Revocations } from './oauth/revocations.ts';
import { revocationRouter } from './oauth/revoke.ts';
import { tokenRouter } from './oauth/token.ts';
import { BuiltinUsers } from './oauth/users.ts';
import { type Store, StoreUnavailableError } from './store/index.ts';
import { Identities } from './vault/identities.ts';
import { CredentialResolver } from './vault/resolver.ts';
import { Selections } from './vault/selections.ts';
import { UpstreamOAuth } from './vault/upstream-oauth.ts';
import { Vault } from './vault/vault.ts';

export interface RegistryDeps {
  config: Config;
  /** The URL clients reach the registry at (no trailing slash). */
  publicUrl: string;
  dataDir: string;
  store: Store;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Where MCP request records go (default: kept in memory). */
  audit?: AuditSink;
}

export interface Registry {
  /** The node:http request listener. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  issuer: string;
  /** The key that signs (keys.active). */
  signingKey: SigningKey;
  keys: KeyRing;
  vault: Vault;
  identities: Identities;
  catalog: CatalogHolder;
  resolver: CredentialResolver;
  audit: AuditSink;
  close(): Promise<void>;
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/** Build the registry. Never listens: main.ts (or a test) owns the socket. */
export async function createRegistry(deps: RegistryDeps): Promise<Registry> {
  const { config, store, log } = deps;
  // Several instances may share this store: what they must agree on (signing keys, throttles) lives in it.
  const sharedStore = config.storage.type === 'postgres';
  const env = deps.env ?? process.env;
  const publicUrl = trimSlash(deps.publicUrl);
  const issuer = trimSlash(config.oauth_server.issuer ?? publicUrl);

  const vault = Vault.load(config.vault, deps.dataDir, log, env);
  const selections = new Selections(store);
  const identities = new Identities(store, vault, selections);
  await identities.seed(config, env);
  const catalog = new CatalogHolder(config, store, env, log);
  await catalog.reload();
  for (const gateway of catalog.current.gateways.values()) {
    for (const a of gateway.servers.values()) {
      if (a.sharedIdentity !== undefined && !(await identities.records.find(a.sharedIdentity))) {
        log.warn('/mcp/%s/%s names shared identity "%s", which does not exist yet: calls fail until an admin creates it', gateway.id, a.name, a.sharedIdentity);
      }
    }
  }
  const resources = new ResourceSpace(publicUrl, (gw, server) => catalog.current.has(gw, server));
  // On PostgreSQL the generated keys live in the store, shared by every instance; key_file keys are files on each.
  const keys =
    sharedStore && !config.oauth_server.signing.key_file
      ? await loadSharedKeyRing(config.oauth_server, store, vault, log)
      : await loadKeyRing(config.oauth_server, deps.dataDir, log);
  const users = await BuiltinUsers.fromConfig(config.oauth_server.builtin.users, env);
  // oauth_server.mode federated: accounts of the upstream IdP are held to allowed_domains / admin_users at every lookup (refresh too).
  const accounts = config.oauth_server.mode === 'federated' ? federatedAccounts(config.oauth_server, users, store) : new Accounts(users, store);
  const outbound = outboundFetch(outboundPolicy(config.outbound));
  const upstreamOAuth = new UpstreamOAuth(store, vault, outbound, `${publicUrl}/connect/callback`, env, log);
  const resolver = new CredentialResolver({ identities, selections, upstreamOAuth, locks: store, connectUrl: (gw, server) => `${publicUrl}/connect/${gw}/${server}`, log });
  const clients = new ClientRegistry(
    store,
    configuredClients(config.oauth_server.clients, env),
    config.oauth_server.client_id_metadata_documents
      ? new ClientMetadataDocuments(outbound, { allowLoopbackHttp: config.outbound.allow_loopback, scopesSupported: config.oauth_server.scopes_supported, log })
      : undefined,
    [`${publicUrl}/connect/signed-in`, `${publicUrl}/admin/signed-in`],
  );
  const revocations = await Revocations.load(store, config.oauth_server.token_lifetime);
  const grants = new Grants(store, keys, issuer, { access: config.oauth_server.token_lifetime, refresh: config.oauth_server.refresh_token_lifetime }, revocations);
  const authenticator = new Authenticator(
    [
      ...(config.auth.type === 'bearer' ? [new StaticBearerTokens(config.auth.bearer?.valid_tokens ?? [], config.oauth_server.scopes_supported)] : []),
      ...(config.oauth_server.enabled ? [new RegistryTokenValidator(keys, issuer)] : []),
      // auth.type oauth (another issuer's JWTs, introspection, UserInfo) or bearer.validation_endpoint: after the registry's own tokens, which never leave.
      ...externalValidators(config.auth, { fetch: outbound, policy: outboundPolicy(config.outbound), log, env }),
    ],
    (principal) => revocations.check(principal),
  );

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // server.trust_proxy: whose X-Forwarded-* is believed (http/client-address.ts).
  app.set('trust proxy', config.server.trust_proxy);

  // Changes whenever this registry starts: the 2025 MCP sessions of /mcp/{gateway} live in its memory and
  // end with it. Clients that watch /healthz (the extension) restart their MCP connections when it changes.
  const epoch = randomUUID();
  app.get('/healthz', async (_req, res) => {
    const ok = await store.healthy();
    res.status(ok ? 200 : 503).set({ 'Cache-Control': 'no-store', 'Keygate-Epoch': epoch }).json({ status: ok ? 'ok' : 'store_unavailable' });
  });

  app.use(
    metadataRouter({
      issuer,
      authorizationServer: config.oauth_server.enabled,
      authorizationServers: externalIssuers(config.auth),
      resources,
      keys,
      scopesSupported: config.oauth_server.scopes_supported,
      mcpScopes: (path) => [...endpointScopes(catalog.current.gateways, path.split('/').map(decodeURIComponent)[2])],
      dynamicRegistration: config.oauth_server.dynamic_registration,
      clientIdMetadataDocuments: config.oauth_server.client_id_metadata_documents,
    }),
  );

  const basePath = new URL(publicUrl).pathname.replace(/\/+$/, '');
  const secureCookies = publicUrl.startsWith('https:');
  // The registry's own browser sign-in (single sign-on): the OAuth pages and the connect pages share it.
  const sessions = new BrowserSessions(store, { secure: secureCookies, path: `${basePath}/` }, config.oauth_server.session_lifetime);
  // Control and record: the audit log (JSONL unless deps.audit), break-glass checks, connections, the admin API.
  const control = await createControl({ config, store, dataDir: deps.dataDir, log, audit: deps.audit, accounts, identities, catalog, resources, sessions, clients, grants });
  const audit = control.audit;

  if (config.oauth_server.enabled) {
    const oauth = express.Router();
    // Browser-based MCP clients call these cross-origin; none of them uses cookies.
    oauth.use(['/token', '/register', '/revoke', '/introspect'], (req, res, next) => {
      res.set('Access-Control-Allow-Origin', '*');
      if (req.method === 'OPTIONS') {
        res.set({ 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'authorization, content-type', 'Access-Control-Max-Age': '600' }).status(204).end();
        return;
      }
      next();
    });
    const cookie = { secure: secureCookies, path: `${basePath}/oauth` };
    const flow = new AuthorizationFlow({
      clients,
      accounts,
      users,
      grants,
      resources,
      interactions: new Interactions(store, cookie),
      sessions,
      consents: new Consents(store),
      throttle: new LoginThrottle(DEFAULT_THROTTLE, undefined, sharedStore ? new StoreWindow(store) : undefined),
      issuer,
      oauthPath: `${basePath}/oauth`,
      scopesSupported: config.oauth_server.scopes_supported,
      log,
    });
    oauth.use(authorizeRouter(flow));
    // oauth_server.mode federated: people sign in at the upstream IdP, which sends them back to /oauth/callback.
    if (config.oauth_server.mode === 'federated') oauth.use(federatedSignIn(flow, { config: config.oauth_server, publicUrl, accounts, fetch: outbound, policy: outboundPolicy(config.outbound), log, env }));
    oauth.use(tokenRouter({ clients, accounts, grants, resources, log, keys, issuer }));
    oauth.use(revocationRouter({ clients, accounts, grants, keys, issuer, log }));
    if (config.oauth_server.dynamic_registration) {
      oauth.use(registerRouter({ clients, allowedRedirectUris: config.oauth_server.allowed_redirect_uris, scopesSupported: config.oauth_server.scopes_supported, limits: config.oauth_server.registration, counts: sharedStore ? new StoreWindow(store) : undefined, log }));
    }
    app.use('/oauth', oauth);
    // MCP 2025-03-26 §2.3.3: clients that find no metadata fall back to
    // /authorize, /token and /register at the server's root.
    const fallback = express.Router();
    fallback.all(['/authorize', '/token', '/register'], (req, res, next) => oauth(req, res, next));
    app.use(fallback);
  }

  app.use('/connect', connectRouter({ catalog, identities, selections, accounts, sessions, upstreamOAuth, store, publicUrl, key: vault.derive('connect pages'), secureCookies, log }));

  // The web console (server/console): the admin API's functions behind the registry's browser sign-in.
  if (config.oauth_server.enabled) {
    app.use('/admin', consoleRouter({ admin: control.api.admin, capabilities: new Capabilities(config.access), sessions, accounts, publicUrl, key: vault.derive('admin console'), secureCookies, log }));
  }

  app.use('/api/v1', apiV1Router({ catalog, resources, authenticator, control: control.api, me: { catalog, identities, selections, publicUrl } }));

  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', error_description: `nothing at ${req.method} ${req.path}` });
  });
  app.use(errorMiddleware(log, `${publicUrl}/.well-known/oauth-protected-resource`));

  const allowedOrigins = new Set([new URL(publicUrl).origin, ...config.server.allowed_origins]);
  const mcp = mcpEndpoint({
    catalog,
    resources,
    authenticator,
    resolver,
    access: control.access,
    audit: control.mcpAudit,
    sessions: new SessionBinding(vault.derive('mcp-session-id binding')),
    store,
    allowedOrigins,
    log,
  });
  // An identity connected, a selection, an assignment or a switch changed: the person's open sessions hear list_changed.
  const listChanges = new ListChanges({ identities: identities.records, selections, catalog, notify: (affects) => mcp.merged.listsChanged(affects), log });
  await listChanges.load();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if ((url.startsWith('/mcp/') || url === '/mcp' || url.startsWith('/mcp?')) && !url.includes('/.well-known/')) {
      mcp(req, res).catch((err: unknown) => {
        // The store cannot be used (the database is down): 503, as the other endpoints answer it.
        const down = err instanceof StoreUnavailableError;
        log.error('MCP request failed: %s', down ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
        if (res.headersSent) return void res.destroy();
        const error = down ? { code: CODES.serverError, message: 'the registry cannot reach its store right now; try again shortly', data: { step: 'store', reason: 'store_unavailable' } } : { code: CODES.internalError, message: 'internal error' };
        res.writeHead(down ? 503 : 500, { 'content-type': 'application/json', ...(down && { 'retry-after': '30' }) }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error }));
      });
      return;
    }
    app(req, res);
  };

  return {
    handler,
    issuer,
    get signingKey() {
      return keys.active;
    },
    keys,
    vault,
    identities,
    catalog,
    resolver,
    audit,
    async close() {
      listChanges.close();
      keys.close();
      await mcp.close();
      catalog.close();
      revocations.close();
      await control.close();
    },
  };
}

/** The issuer of another IdP whose tokens are accepted (auth.type oauth): named in the protected-resource documents when the registry issues none itself. */
function externalIssuers(auth: Config['auth']): string[] {
  if (auth.type !== 'oauth' || !auth.oauth) return [];
  if (auth.oauth.issuer) return [auth.oauth.issuer];
  // discovery_url is the issuer, or its /.well-known document.
  return auth.oauth.discovery_url ? [auth.oauth.discovery_url.replace(/\/\.well-known\/(openid-configuration|oauth-authorization-server)$/, '')] : [];
}
