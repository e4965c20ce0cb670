import type { Principal } from '../inbound/principal.ts';

// Who-matches-whom, in one place: a gateway's members, an access role's
// members and a tool policy's `when` / `unless` all name attributes of the
// caller (users by subject or email, groups, email domains, scopes, roles)
// and ask whether this principal has them. They differ only in how the keys
// combine, which each says:
//
// - members (`any_key`): anyone matching one key is a member; `scopes` needs
//   all the scopes it lists;
// - a policy condition (`every_key`): every key given must match, each by any
//   of its values.
//
// An anonymous caller has no attributes: it matches no key.

export interface PrincipalMatch {
  users?: readonly string[] | undefined;
  groups?: readonly string[] | undefined;
  /** Lower-cased (compiled once from the configuration). */
  emailDomains?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  roles?: readonly string[] | undefined;
}

export type Combine = 'any_key' | 'every_key';

/** Each key the rule names (an empty list names nothing), with whether the principal matches it. */
function keys(m: PrincipalMatch, p: Principal, combine: Combine): boolean[] {
  const email = p.email?.toLowerCase();
  const given = (values: readonly string[] | undefined): values is readonly string[] => values !== undefined && values.length > 0;
  const found: boolean[] = [];
  if (given(m.users)) found.push(m.users.some((u) => u === p.subject || (email !== undefined && u.toLowerCase() === email)));
  if (given(m.groups)) found.push(m.groups.some((g) => p.groups.includes(g)));
  if (given(m.emailDomains)) found.push(email !== undefined && m.emailDomains.some((d) => email.endsWith(`@${d}`)));
  if (given(m.scopes)) found.push(combine === 'any_key' ? m.scopes.every((s) => p.scopes.includes(s)) : m.scopes.some((s) => p.scopes.includes(s)));
  if (given(m.roles)) found.push(p.roles !== undefined && m.roles.some((r) => p.roles!.includes(r)));
  return found;
}

/** Does the principal match the rule, its keys combined as `combine` says? A rule naming no key matches nobody. */
export function matchesPrincipal(m: PrincipalMatch, principal: Principal | undefined, combine: Combine): boolean {
  if (!principal) return false;
  const found = keys(m, principal, combine);
  if (found.length === 0) return false;
  return combine === 'any_key' ? found.includes(true) : !found.includes(false);
}

/** Does the rule name any key at all? (A gateway whose members name nobody is open to anyone signed in.) */
export function namesAnyone(m: PrincipalMatch | undefined): boolean {
  return m !== undefined && [m.users, m.groups, m.emailDomains, m.scopes, m.roles].some((v) => v !== undefined && v.length > 0);
}
