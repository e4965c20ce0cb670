import type { NextFunction, Request, Response } from 'express';
import { ADMIN_SCOPE, type AccessConfig, CAPABILITIES, type Capability, DEFAULT_ROLES, type RoleInput } from '../config/sections/access.ts';
import { InsufficientScopeError, KeygateError } from '../http/errors.ts';
import type { Principal } from '../inbound/principal.ts';
import { matchesPrincipal } from '../catalog/principal-match.ts';
import { caller } from './http.ts';

// Capabilities, not fixed role names (MCP Manager): each admin route group
// needs one capability, held through the roles of `access.roles` whose
// members the caller matches. A role's name grants nothing by itself.
// Without access.roles, holders of the scope mcp:admin hold every capability,
// and a caller without it gets the RFC 6750 insufficient_scope answer, as
// before roles existed.

/** 403: the caller's roles do not grant the capability the route needs. */
export class InsufficientCapabilityError extends KeygateError {
  readonly code = 'insufficient_capability';
  readonly status = 403;
  constructor(
    description: string,
    readonly capability: Capability,
  ) {
    super(description);
  }
}

/** Does the principal belong to the role: matching one of its member keys (all of `scopes`)? */
export function isRoleMember(role: RoleInput, principal: Principal): boolean {
  const m = role.members;
  return matchesPrincipal({ users: m.users, groups: m.groups, emailDomains: m.email_domains.map((d) => d.toLowerCase()), scopes: m.scopes, roles: m.roles }, principal, 'any_key');
}

export class Capabilities {
  /** true: access.roles is configured; false: the default (mcp:admin holds every capability). */
  readonly configured: boolean;
  private readonly roles: RoleInput[];

  constructor(access: AccessConfig | undefined) {
    this.configured = access?.roles !== undefined;
    this.roles = access?.roles ?? DEFAULT_ROLES;
  }

  /** The capabilities the principal holds (none for an anonymous caller), in the vocabulary's order. */
  of(principal: Principal | undefined): Capability[] {
    if (!principal) return [];
    const held = new Set<Capability>();
    for (const role of this.roles) if (isRoleMember(role, principal)) for (const c of role.capabilities) held.add(c);
    return CAPABILITIES.filter((c) => held.has(c));
  }

  /** The roles the principal holds (by name, for /api/v1/me). */
  rolesOf(principal: Principal | undefined): string[] {
    return principal && this.configured ? this.roles.filter((r) => isRoleMember(r, principal)).map((r) => r.name) : [];
  }

  /** The API's refusal of a caller holding `held` but not `capability` (the console records the same). */
  refusal(capability: Capability, held: Capability[]): KeygateError {
    // RFC 6750 §3.1: without roles, a token with the scope would do, so the answer names the scope.
    if (!this.configured) return new InsufficientScopeError(`this API needs the capability ${capability}, held by the scope ${ADMIN_SCOPE}`, ADMIN_SCOPE);
    const yours = held.length ? `your roles grant ${held.join(', ')}` : 'none of your roles grants a capability';
    return new InsufficientCapabilityError(`this route needs the capability ${capability} (access.roles); ${yours}`, capability);
  }

  /** Middleware: 401 without a token; 403 naming the capability without it. */
  require(capability: Capability, why = 'this API needs an access token') {
    return (req: Request, _res: Response, next: NextFunction): void => {
      const held = this.of(caller(req, why));
      if (!held.includes(capability)) throw this.refusal(capability, held);
      next();
    };
  }

  /** Middleware: every capability (a route group that names none of its own fails closed). */
  requireAll(why = 'this API needs an access token') {
    return (req: Request, _res: Response, next: NextFunction): void => {
      const held = this.of(caller(req, why));
      const missing = CAPABILITIES.find((c) => !held.includes(c));
      if (missing) throw this.refusal(missing, held);
      next();
    };
  }
}
