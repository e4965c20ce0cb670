import type { PolicyRuleInput, PrincipalMatchInput } from '../config/sections/policies.ts';
import type { Principal } from '../inbound/principal.ts';
import { matchesPrincipal, type PrincipalMatch } from './principal-match.ts';
import { type Assignment, globToRegExp, toolAllowed } from './catalog.ts';
import { CODES, type GatewayFailure } from './failure.ts';

// Policies of an assignment: allow / deny rules on what the upstream offers
// (its tools, resources and prompts) by who is calling. Evaluated on the
// request path, synchronously, over rules compiled once per catalog build:
// the first rule whose kind and globs, `when` and `unless` match decides; none
// matching allows. A policy depends only on the caller and the item's name
// (a resource's URI, or a template's URI template), never on the arguments,
// so a list can hide exactly what a call would be refused.

/** What a rule can be about. */
export type PolicyKind = 'tool' | 'resource' | 'prompt';

export interface PolicyRule {
  /** Position in the assignment's `policies` (for logs and the default message). */
  index: number;
  action: 'allow' | 'deny';
  tools: RegExp[] | undefined;
  resources: RegExp[] | undefined;
  prompts: RegExp[] | undefined;
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
  return rules.map((r, index) => ({
    index,
    action: r.action,
    tools: r.tools?.map(globToRegExp),
    resources: r.resources?.map(globToRegExp),
    prompts: r.prompts?.map(globToRegExp),
    when: compileMatch(r.when),
    unless: compileMatch(r.unless),
    reason: r.reason,
  }));
}

const GLOBS = { tool: 'tools', resource: 'resources', prompt: 'prompts' } as const;

/** The rule that decides a use of `name` (an upstream tool or prompt name, a resource URI or URI template) by this caller, if any. */
export function decidingRule(rules: PolicyRule[], principal: Principal | undefined, name: string, kind: PolicyKind = 'tool'): PolicyRule | undefined {
  for (const rule of rules) {
    const globs = rule[GLOBS[kind]];
    // A rule that names other kinds only is not about this one.
    if (!globs && (rule.tools || rule.resources || rule.prompts)) continue;
    if (globs && !globs.some((r) => r.test(name))) continue;
    if (rule.when && !matchesPrincipal(rule.when, principal, 'every_key')) continue;
    if (rule.unless && matchesPrincipal(rule.unless, principal, 'every_key')) continue;
    return rule;
  }
  return undefined;
}

/** The deny rule refusing this use, or undefined when the assignment's policies allow it. */
export function policyDenial(a: Assignment, principal: Principal | undefined, name: string, kind: PolicyKind = 'tool'): PolicyRule | undefined {
  if (!a.policies) return undefined;
  const rule = decidingRule(a.policies, principal, name, kind);
  return rule?.action === 'deny' ? rule : undefined;
}

/** Is this resource (URI or URI template) or prompt offered to this caller (what resources/list, resources/templates/list and prompts/list show)? */
export function offered(a: Assignment, principal: Principal | undefined, kind: 'resource' | 'prompt', name: string): boolean {
  return policyDenial(a, principal, name, kind) === undefined;
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
export function policyFailure(a: Assignment, name: string, rule: PolicyRule, kind: PolicyKind = 'tool'): GatewayFailure {
  return {
    status: 200,
    code: CODES.forbidden,
    step: 'assignment',
    reason: 'policy_denied',
    message: rule.reason ?? `${kind} "${name}" of /mcp/${a.gateway}/${a.name} is denied to you by policy ${rule.index}`,
    rule: ruleName(rule),
  };
}

/** How the audit names the rule that decided: its place in the server's `policies`. */
export const ruleName = (rule: PolicyRule): string => `policies[${rule.index}]`;
