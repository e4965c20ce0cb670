import type { Principal } from './principal.ts';

/**
 * One way of validating an inbound bearer token. Validators are asked in
 * order: `undefined` means "not mine, ask the next"; a principal means valid;
 * throwing InvalidTokenError (or InsufficientScopeError) means "mine, and
 * refused" and ends the search.
 */
export interface TokenValidator {
  readonly name: string;
  validate(token: string): Promise<Principal | undefined>;
}
