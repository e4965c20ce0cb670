import { type NextFunction, type Request, type Response, Router } from 'express';
import { type CatalogHolder, mayUse } from '../catalog/catalog.ts';
import type { Authenticator } from '../inbound/authenticator.ts';
import type { Principal } from '../inbound/principal.ts';
import type { ResourceSpace } from '../oauth/resource.ts';
import { AccessDeniedError } from '../http/errors.ts';
import type { BreakGlass } from '../catalog/access.ts';
import type { AuditSink } from '../audit/audit.ts';
import { type AdminDeps, adminRouter } from './admin/index.ts';
import { auditRouter } from './audit.ts';
import { Capabilities } from './capabilities.ts';
import { caller } from './http.ts';
import { type MeDeps, meRouter } from './me.ts';

// The admin and self-service JSON API. This slice: what the extension needs to
// offer MCP servers (the gateways the caller may reach) and who the caller is.

export interface ApiDeps {
  catalog: CatalogHolder;
  resources: ResourceSpace;
  authenticator: Authenticator;
  /** Control and record: /api/v1/admin/*, /api/v1/audit, /api/v1/me/audit, and deactivated users refused. */
  control?: { admin: AdminDeps; audit: AuditSink; access: BreakGlass };
  /** Self-service: /api/v1/me/servers, /me/identities, /me/selections. */
  me?: MeDeps;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export function apiV1Router(deps: ApiDeps): Router {
  const router = Router();
  const { resources } = deps;
  // Admin capabilities from access.roles (default: the scope mcp:admin holds them all).
  const capabilities = deps.control && new Capabilities(deps.control.admin.config.access);

  // Inbound validation for every API call; anonymous is allowed where a route says so.
  router.use(async (req: Request, _res: Response, next: NextFunction) => {
    req.principal = await deps.authenticator.authenticate(req.headers.authorization, resources.endpoint('/api/v1'));
    // Offboarding: a deactivated user's unexpired token opens nothing here either.
    if (deps.control?.access.userDisabled(req.principal)) throw new AccessDeniedError('this account is deactivated');
    if (deps.control?.access.clientDisabled(req.principal)) throw new AccessDeniedError('this client is disabled by an admin');
    next();
  });

  router.get('/gateways', (req, res) => {
    const gateways = [...deps.catalog.current.gateways.values()]
      .filter((gw) => !gw.disabled && mayUse(gw, req.principal))
      .map((gw) => ({
        id: gw.id,
        name: gw.name,
        ...(gw.description !== undefined && { description: gw.description }),
        visibility: gw.visibility,
        mcp_url: resources.endpoint(`/mcp/${gw.id}`),
        servers: [...gw.servers.values()].map((a) => ({
          name: a.name,
          upstream: a.upstream.id,
          upstream_name: a.upstream.name,
          identity: a.identity,
          mcp_url: resources.endpoint(`/mcp/${gw.id}/${a.name}`),
        })),
      }));
    res.set('Cache-Control', 'no-store').json({ gateways });
  });

  router.get('/me', (req, res) => {
    const p = req.principal;
    if (!p) {
      res.status(200).json({ authenticated: false });
      return;
    }
    res.set('Cache-Control', 'no-store').json({
      authenticated: true,
      subject: p.subject,
      ...(p.name !== undefined && { name: p.name }),
      ...(p.email !== undefined && { email: p.email }),
      scopes: p.scopes,
      provider: p.provider,
    });
  });

  // What the caller may administer (empty: nothing; their own identities, /me/*, are always theirs).
  router.get('/me/capabilities', (req, res) => {
    const p = caller(req, 'sign in to see what you may administer');
    res.set('Cache-Control', 'no-store').json({ capabilities: capabilities?.of(p) ?? [], roles: capabilities?.rolesOf(p) ?? [] });
  });

  if (deps.control) {
    router.use(auditRouter({ audit: deps.control.audit, capabilities }));
    router.use('/admin', adminRouter(deps.control.admin, capabilities));
  }

  if (deps.me) router.use('/me', meRouter(deps.me));

  return router;
}
