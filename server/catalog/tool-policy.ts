import type { PolicyRuleInput, PrincipalMatchInput } from '../config/sections/policies.ts';
import type { Principal } from '../inbound/principal.ts';
import { matchesPrincipal, type PrincipalMatch } from './principal-match.ts';
import { type Assignment, globToRegExp, toolAllowed } from './catalog.ts';
import { CODES, type GatewayFailure } from './failure.ts';

// Tool policies of an assignment: allow / deny rules on the upstream's tools
// by who is calling. Evaluated on the request path, synchronously, over rules
// compiled once per catalog build: the first rule whose tools, `when` and
// `unless` match the call decides; none matching allows the call. A policy
// depends only on the caller and the tool's name, never on the arguments, so
// tools/list can hide exactly the tools a call would be refused.

export interface PolicyRule {
  /** Position in the assignment's `policies` (for logs and the default message). */
  index: number;
  action: 'allow' | 'deny';
  tools: RegExp[] | undefined;
  when: PrincipalMatch | undefined;
  unless: PrincipalMatch | undefined;
  reason: string | undefined;
}

function compileMatch(m: PrincipalMatchInput | undefined): PrincipalMatch | undefined {
  return (
    m && {
      users: m.users,
      groups: m.groups,
      emailDomains: m.email_domains?.map((d) => d.toLowerCase()),
      scopes: m.scopes,
      roles: m.roles,
    }
  );
}

export function compilePolicies(rules: PolicyRuleInput[] | undefined): PolicyRule[] | undefined {
  if (!rules?.length) return undefined;
  return rules.map((r, index) => ({ index, action: r.action, tools: r.tools?.map(globToRegExp), when: compileMatch(r.when), unless: compileMatch(r.unless), reason: r.reason }));
}

/** The rule that decides a call of `tool` (an upstream tool name) by this caller, if any. */
export function decidingRule(rules: PolicyRule[], principal: Principal | undefined, tool: string): PolicyRule | undefined {
  for (const rule of rules) {
    if (rule.tools && !rule.tools.some((r) => r.test(tool))) continue;
    if (rule.when && !matchesPrincipal(rule.when, principal, 'every_key')) continue;
    if (rule.unless && matchesPrincipal(rule.unless, principal, 'every_key')) continue;
    return rule;
  }
  return undefined;
}

/** The deny rule refusing this call, or undefined when the assignment's policies allow it. */
export function policyDenial(a: Assignment, principal: Principal | undefined, tool: string): PolicyRule | undefined {
  if (!a.policies) return undefined;
  const rule = decidingRule(a.policies, principal, tool);
  return rule?.action === 'deny' ? rule : undefined;
}

/** Is the tool offered to this caller: passed by the tool filter and not denied by a policy? (What tools/list shows.) */
export function toolOffered(a: Assignment, principal: Principal | undefined, tool: string): boolean {
  return toolAllowed(a.tools, tool) && policyDenial(a, principal, tool) === undefined;
}

/**
 * A denied call, as the JSON-RPC error the client shows: the rule's reason as
 * the message (HTTP 200 on the raw path: not a failure to retry or to sign in
 * again for).
 */
export function policyFailure(a: Assignment, tool: string, rule: PolicyRule): GatewayFailure {
  return {
    status: 200,
    code: CODES.forbidden,
    step: 'assignment',
    reason: 'policy_denied',
    message: rule.reason ?? `tool "${tool}" of /mcp/${a.gateway}/${a.name} is denied to you by policy ${rule.index}`,
  };
}
