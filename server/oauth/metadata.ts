import { type Request, type Response, Router } from 'express';
import type { ResourceSpace } from './resource.ts';
import type { SigningKey } from './signing-keys.ts';

export interface MetadataDeps {
  issuer: string;
  resources: ResourceSpace;
  key: SigningKey;
  scopesSupported: string[];
  dynamicRegistration: boolean;
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
    grant_types_supported: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
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
  for (const doc of ['oauth-authorization-server', 'openid-configuration']) {
    router.get(`/.well-known/${doc}`, sendJson(asMetadata));
    router.get(`/.well-known/${doc}/*rest`, sendJson(asMetadata));
  }

  // RFC 9728: the protected resource metadata for the registry as a whole and,
  // path-inserted, for each MCP endpoint.
  const resourceDocument = (resource: string) => ({
    resource,
    authorization_servers: [deps.issuer],
    bearer_methods_supported: ['header'],
    scopes_supported: deps.scopesSupported,
    resource_name: 'Keygate',
  });
  router.get('/.well-known/oauth-protected-resource', sendJson(resourceDocument(deps.resources.base)));
  router.get('/.well-known/oauth-protected-resource/*rest', (req, res) => {
    const path = `/${(req.params as { rest: string[] }).rest.join('/')}`;
    let resource: string;
    try {
      resource = deps.resources.validate([deps.resources.endpoint(path)])[0]!;
    } catch {
      res.status(404).json({ error: 'not_found', error_description: `no protected resource at ${path}` });
      return;
    }
    res.set({ 'Cache-Control': 'public, max-age=300', 'Access-Control-Allow-Origin': '*' }).json(resourceDocument(resource));
  });

  router.get('/oauth/jwks', sendJson({ keys: [deps.key.publicJwk] }));
  return router;
}
