import express, { type NextFunction, type Request, type Response, Router } from 'express';
import type { Capability } from '../../config/sections/access.ts';
import { Capabilities } from '../capabilities.ts';
import { changeTrail } from './changes.ts';
import { clientRoutes } from './clients.ts';
import { connectionRoutes } from './connections.ts';
import type { AdminDeps } from './deps.ts';
import { gatewayRoutes } from './gateways.ts';
import { identityRoutes } from './identities.ts';
import { upstreamRoutes } from './upstreams.ts';
import { userRoutes } from './users.ts';

export type { AdminDeps } from './deps.ts';

/** The capability each route group needs (access.roles); a group missing here needs every capability. */
export const ROUTE_CAPABILITIES: Readonly<Record<string, Capability>> = {
  upstreams: 'server_management',
  gateways: 'gateway_management',
  identities: 'identity_management',
  connections: 'identity_management',
  users: 'user_management',
  clients: 'client_management',
};

/**
 * /api/v1/admin: each route group needs its capability (401 without a token;
 * 403 naming the capability without it). Without access.roles, the scope
 * mcp:admin holds every capability (403 insufficient_scope without it).
 * Every change, and every refused attempt of a signed-in caller, is recorded
 * in the audit log (changes.ts).
 */
export function adminRouter(deps: AdminDeps, capabilities = new Capabilities(deps.config.access)): Router {
  const router = Router();
  const why = capabilities.configured ? 'this API needs an access token' : 'this API needs an access token with the scope mcp:admin';
  const all = capabilities.requireAll(why);
  const each = new Map(Object.entries(ROUTE_CAPABILITIES).map(([group, c]) => [group, capabilities.require(c, why)]));
  // Every change is audited, a refused one too: the trail starts before the capability check.
  const trail = changeTrail(deps);
  router.use(trail.observe);
  // Before any route (and before the body is read): the group's capability; an unknown group fails closed.
  router.use((req: Request, res: Response, next: NextFunction) => (each.get(req.path.split('/')[1] ?? '') ?? all)(req, res, next));
  router.use(express.json({ limit: '256kb' }));
  router.use(trail.before);
  router.use(upstreamRoutes(deps));
  router.use(gatewayRoutes(deps));
  router.use(identityRoutes(deps));
  router.use(userRoutes(deps));
  router.use(connectionRoutes(deps));
  router.use(clientRoutes(deps));
  return router;
}
