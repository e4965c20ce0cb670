import { z } from 'zod';
import { scope } from './common.ts';

// Who a rule is about: attributes of the principal (the caller). Used by the
// tool policies of an assignment (`when` / `unless`) and by the members of an
// access role (access.ts). Structured data, never an expression: a rule can
// only compare the principal's own attributes with the values written here.

export const emailDomain = z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a domain like example.com');

const EMPTY = 'an empty list matches nobody: name at least one value, or leave the key out';
const values = <T extends z.ZodType<string>>(item: T) => z.array(item).min(1, EMPTY);
const plain = z.string().min(1);

export const ATTRIBUTE_KEYS = ['users', 'groups', 'email_domains', 'scopes', 'roles'] as const;

/** Attributes compared with the principal's: users (subject or email), groups, email domains, scopes, roles. */
export const principalMatch = z
  .strictObject({
    users: values(plain).optional(),
    groups: values(plain).optional(),
    email_domains: values(emailDomain).optional(),
    scopes: values(scope).optional(),
    roles: values(plain).optional(),
  })
  .refine((m) => ATTRIBUTE_KEYS.some((k) => m[k] !== undefined), {
    message: `name at least one of ${ATTRIBUTE_KEYS.join(', ')} (to match everyone, leave when/unless out)`,
  });
export type PrincipalMatchInput = z.infer<typeof principalMatch>;

// What a denied caller is told: one line of printable text.
const reason = z
  .string()
  .trim()
  .min(1)
  .max(500)
  .regex(/^[^\p{Cc}]*$/u, 'expected one line of text without control characters');

/**
 * One policy rule of an assignment (MXCP's `policies` with structured
 * conditions), over what the server offers: its tools, resources and
 * prompts. The first rule that matches the call decides; no rule matching
 * allows it (the tool filter and the gateway's members still apply). A rule
 * naming `tools`, `resources` or `prompts` covers only the kinds it names; a
 * rule naming none of them covers all three.
 */
export const policyRule = z
  .strictObject({
    action: z.enum(['allow', 'deny'], { error: 'expected action: allow or deny' }),
    /** Globs over the upstream's tool names, like the tool filter's. */
    tools: values(z.string().min(1)).optional(),
    /** Globs over resource URIs (a resources/read, a subscription) and the URI templates a server lists. */
    resources: values(z.string().min(1)).optional(),
    /** Globs over the upstream's prompt names. */
    prompts: values(z.string().min(1)).optional(),
    /** The rule applies to a caller matching every key given (any value within a key). Omitted: every caller. */
    when: principalMatch.optional(),
    /** ...except to a caller matching this (every key given, any value within a key). */
    unless: principalMatch.optional(),
    /** deny: what the caller is told. */
    reason: reason.optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.action === 'allow' && rule.reason !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: 'reason is what a denied caller is told: an allow rule has none' });
    }
  });
export type PolicyRuleInput = z.infer<typeof policyRule>;

export const policies = z.array(policyRule).max(100, 'at most 100 rules per server');
