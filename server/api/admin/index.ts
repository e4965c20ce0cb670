import express, { Router } from 'express';
import { requireScope } from '../http.ts';
import { clientRoutes } from './clients.ts';
import { connectionRoutes } from './connections.ts';
import type { AdminDeps } from './deps.ts';
import { gatewayRoutes } from './gateways.ts';
import { identityRoutes } from './identities.ts';
import { upstreamRoutes } from './upstreams.ts';
import { userRoutes } from './users.ts';

export type { AdminDeps } from './deps.ts';

/** /api/v1/admin: every route needs the mcp:admin scope (401 without a token, 403 insufficient_scope without the scope). */
export function adminRouter(deps: AdminDeps): Router {
  const router = Router();
  router.use(requireScope('mcp:admin'));
  router.use(express.json({ limit: '256kb' }));
  router.use(upstreamRoutes(deps));
  router.use(gatewayRoutes(deps));
  router.use(identityRoutes(deps));
  router.use(userRoutes(deps));
  router.use(connectionRoutes(deps));
  router.use(clientRoutes(deps));
  return router;
}
