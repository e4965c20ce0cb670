import type { Principal } from '../inbound/principal.ts';
import type { Gateway } from './catalog.ts';
import type { GatewayFailure } from './jsonrpc.ts';

/**
 * Break-glass checks on the request path that depend on who is calling: a
 * deactivated user, a disabled connection (one user's use of one gateway from
 * one client). Synchronous over in-memory state kept current by store change
 * listeners, so a switch takes effect on the next request.
 */
export interface AccessChecks {
  check(principal: Principal | undefined, gateway: Gateway): GatewayFailure | undefined;
}

export const allowAll: AccessChecks = { check: () => undefined };
