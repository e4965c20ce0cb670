import { type Request, type Response, Router } from 'express';
import { TOKEN_EXCHANGE_GRANT } from '../config/sections/oauth-server.ts';
import type { ResourceSpace } from './resource.ts';
import type { KeyRing } from './signing-keys.ts';

export interface MetadataDeps {
  issuer: string;
  /**
   * oauth_server.enabled: the registry is an authorization server. When it is
   * not, it serves no authorization-server metadata and no JWKS, and its
   * protected-resource documents name `authorizationServers` instead.
   */
  authorizationServer: boolean;
  /** Without the built-in one: the issuer that does issue the accepted tokens (auth.oauth), if any. */
  authorizationServers: string[];
  resources: ResourceSpace;
  keys: KeyRing;
  scopesSupported: string[];
  /** The scopes an MCP endpoint's methods need (`/mcp`, `/mcp/{gateway}[/{server}]`): all its metadata advertises. */
  mcpScopes(path: string): string[];
  dynamicRegistration: boolean;
  clientIdMetadataDocuments: boolean;
}

/** RFC 8414 authorization server metadata. */
export function authorizationServerMetadata(deps: MetadataDeps): Record<string, unknown> {
  const oauth = `${deps.issuer}/oauth`;
  return {
    issuer: deps.issuer,
    authorization_endpoint: `${oauth}/authorize`,
    token_endpoint: `${oauth}/token`,
    ...(deps.dynamicRegistration && { registration_endpoint: `${oauth}/register` }),
    jwks_uri: `${oauth}/jwks`,
    scopes_supported: [...deps.scopesSupported, 'offline_access'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    // client_credentials (RFC 6749 §4.4) and token exchange (RFC 8693) are for clients an admin configured.
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: deps.clientIdMetadataDocuments,
    revocation_endpoint: `${oauth}/revoke`,
    revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    introspection_endpoint: `${oauth}/introspect`,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
  };
}

export function metadataRouter(deps: MetadataDeps): Router {
  const router = Router();
  const asMetadata = authorizationServerMetadata(deps);

  const sendJson = (body: unknown) => (_req: Request, res: Response) => {
    res.set({ 'Cache-Control': 'public, max-age=300', 'Access-Control-Allow-Origin': '*' }).json(body);
  };

  // RFC 8414 §3 (and the path-inserted form for issuers with a path);
  // OpenID Connect Discovery, which some clients try first.
  // Clients that treat an MCP URL as the issuer try both insertion
  // (/.well-known/x/mcp/team) and appending (/mcp/team/.well-known/x).
  for (const doc of deps.authorizationServer ? ['oauth-authorization-server', 'openid-configuration'] : []) {
    router.get(`/.well-known/${doc}`, sendJson(asMetadata));
    router.get(`/.well-known/${doc}/*rest`, sendJson(asMetadata));
    router.get(`/*prefix/.well-known/${doc}`, sendJson(asMetadata));
  }

  // RFC 9728: the protected resource metadata for the registry as a whole and,
  // path-inserted, for each MCP endpoint.
  // RFC 9728 §2: authorization_servers is optional; a registry that takes static bearer tokens names none.
  const authorizationServers = deps.authorizationServer ? [deps.issuer] : deps.authorizationServers;
  // The registry as a whole (the admin API's audience) lists every scope; an MCP endpoint only those its
  // methods need, so an MCP client that asks for "everything advertised" never asks for mcp:admin.
  const resourceDocument = (resource: string, scopes: string[]) => ({
    resource,
    ...(authorizationServers.length && { authorization_servers: authorizationServers }),
    bearer_methods_supported: ['header'],
    scopes_supported: scopes,
    resource_name: 'Keygate',
  });
  router.get('/.well-known/oauth-protected-resource', sendJson(resourceDocument(deps.resources.base, deps.scopesSupported)));
  router.get('/.well-known/oauth-protected-resource/*rest', (req, res) => {
    const path = `/${(req.params as { rest: string[] }).rest.join('/')}`;
    let resource: string;
    try {
      // Any MCP endpoint path is answered alike, existing or not: this document must not tell an
      // anonymous caller which (private) gateways exist.
      resource = deps.resources.validate([deps.resources.endpoint(path)], { existing: false })[0]!;
    } catch {
      res.status(404).json({ error: 'not_found', error_description: `no protected resource at ${path}` });
      return;
    }
    const scopes = resource === deps.resources.base ? deps.scopesSupported : deps.mcpScopes(resource.slice(deps.resources.base.length));
    res.set({ 'Cache-Control': 'public, max-age=300', 'Access-Control-Allow-Origin': '*' }).json(resourceDocument(resource, scopes));
  });

  if (deps.authorizationServer) router.get('/oauth/jwks', (req, res) => sendJson(deps.keys.jwks)(req, res)); // the ring may change while running
  return router;
}
