import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Capabilities } from '../../server/api/capabilities.ts';
import { ConfigError, parseConfig } from '../../server/config/load.ts';
import { policies as policiesSchema } from '../../server/config/sections/policies.ts';
import type { Principal } from '../../server/inbound/principal.ts';
import { compilePolicies, decidingRule } from '../../server/catalog/tool-policy.ts';

// Tool policies and access roles in the configuration: the structured rule
// form, its errors (naming the key path), and how rules and roles match a
// principal.

const base = (servers: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  upstreams: [{ id: 'crm', url: 'http://127.0.0.1:3001/mcp' }],
  gateways: [{ id: 'team', servers: [{ upstream: 'crm', identity: 'shared', ...servers }] }],
  ...extra,
});

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseConfig(raw, 'keygate.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('the configuration was accepted');
}

const person = (p: Partial<Principal>): Principal => ({ subject: 'someone', scopes: [], groups: [], provider: 'registry', ...p });

describe('tool policies in the configuration', () => {
  test('a well-formed rule list loads, with the structured form of the seeds', () => {
    const config = parseConfig(
      base({
        policies: [
          { action: 'allow', tools: ['delete_*'], when: { groups: ['platform'] } },
          { action: 'deny', tools: ['delete_*'], reason: 'Only the platform team may delete' },
          { action: 'deny', unless: { email_domains: ['corp.example'] }, reason: 'Access restricted to company domain' },
        ],
      }),
      'keygate.yaml',
      {},
    );
    assert.equal(config.gateways[0]!.servers[0]!.policies!.length, 3);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown key in a rule', { action: 'deny', condition: "user.email.endsWith('x')" }, /gateways\[0\]\.servers\[0\]\.policies\[0\]: unknown key "condition"/],
    ['an action that is neither allow nor deny', { action: 'block' }, /policies\[0\]\.action: expected action: allow or deny/],
    ['a rule without an action', { tools: ['x'] }, /policies\[0\]\.action: expected action: allow or deny/],
    ['an unknown attribute in when', { action: 'deny', when: { department: ['x'] } }, /policies\[0\]\.when: unknown key "department"/],
    ['an empty when', { action: 'deny', when: {} }, /policies\[0\]\.when: name at least one of users, groups, email_domains, scopes, roles/],
    ['an empty list in unless', { action: 'deny', unless: { groups: [] } }, /policies\[0\]\.unless\.groups: an empty list matches nobody/],
    ['an email domain that is not one', { action: 'deny', when: { email_domains: ['@corp'] } }, /policies\[0\]\.when\.email_domains\[0\]: expected a domain like example.com/],
    ['an empty tools list', { action: 'deny', tools: [] }, /policies\[0\]\.tools: an empty list matches nobody/],
    ['a reason on an allow rule', { action: 'allow', reason: 'because' }, /policies\[0\]\.reason: reason is what a denied caller is told/],
    ['a reason of several lines', { action: 'deny', reason: 'one\ntwo' }, /policies\[0\]\.reason: expected one line of text/],
    ['when as an expression string', { action: 'deny', when: "user.role != 'admin'" }, /policies\[0\]\.when: .*object/i],
  ];
  for (const [what, rule, expected] of bad) {
    test(`refused with the key path: ${what}`, () => {
      const problems = problemsOf(base({ policies: [rule] }));
      assert.ok(problems.some((p) => expected.test(p)), `expected ${expected} in:\n${problems.join('\n')}`);
    });
  }

  test('policies is a list of rules, not a map of MXCP sections', () => {
    const problems = problemsOf(base({ policies: { input: [{ condition: 'x', action: 'deny' }] } }));
    assert.match(problems.join('\n'), /gateways\[0\]\.servers\[0\]\.policies: .*array/i);
  });
});

describe('how rules match (first match wins, none matching allows)', () => {
  const rules = compilePolicies(
    policiesSchema.parse([
      { action: 'allow', tools: ['delete_*'], when: { groups: ['platform'], email_domains: ['corp.example'] } },
      { action: 'deny', tools: ['delete_*'], reason: 'Only the platform team may delete' },
      { action: 'deny', tools: ['admin_*'], unless: { roles: ['operator'], scopes: ['mcp:admin'] } },
      { action: 'deny', when: { users: ['mallory', 'Eve@Corp.Example'] }, reason: 'blocked' },
    ]),
  )!;
  const decide = (p: Principal | undefined, tool: string) => {
    const rule = decidingRule(rules, p, tool);
    return rule ? `${rule.action}#${rule.index}` : 'none';
  };
  const table: [string, Principal | undefined, string, string][] = [
    ['every key of when must match: group and domain', person({ email: 'a@corp.example', groups: ['platform'] }), 'delete_repo', 'allow#0'],
    ['the group alone is not enough', person({ email: 'a@else.example', groups: ['platform'] }), 'delete_repo', 'deny#1'],
    ['the domain alone is not enough', person({ email: 'a@corp.example', groups: ['sales'] }), 'delete_repo', 'deny#1'],
    ['a domain compares without case, and only the whole domain', person({ email: 'a@evilcorp.example', groups: ['platform'] }), 'delete_repo', 'deny#1'],
    ['an anonymous caller matches no when', undefined, 'delete_repo', 'deny#1'],
    ['unless: one key of it (all keys given must match) spares the caller', person({ roles: ['operator'], scopes: ['mcp:admin'] }), 'admin_reset', 'none'],
    ['unless with only one of its keys matching does not spare', person({ roles: ['operator'] }), 'admin_reset', 'deny#2'],
    ['a role named by no rule grants nothing', person({ roles: ['admin'] }), 'admin_reset', 'deny#2'],
    ['an anonymous caller never matches unless', undefined, 'admin_reset', 'deny#2'],
    ['users match the subject', person({ subject: 'mallory' }), 'echo', 'deny#3'],
    ['users match the email, without case', person({ email: 'eve@corp.example' }), 'echo', 'deny#3'],
    ['no rule matching allows', person({}), 'echo', 'none'],
  ];
  for (const [what, principal, tool, expected] of table) {
    test(what, () => assert.equal(decide(principal, tool), expected));
  }
});

describe('access roles in the configuration', () => {
  test('roles load; capabilities are the vocabulary', () => {
    const config = parseConfig(
      base({}, { access: { roles: [{ name: 'platform', capabilities: ['gateway_management', 'server_management'], members: { groups: ['platform'] } }] } }),
      'keygate.yaml',
      {},
    );
    const caps = new Capabilities(config.access);
    assert.deepEqual(caps.of(person({ groups: ['platform'] })), ['gateway_management', 'server_management']);
    assert.deepEqual(caps.of(person({ scopes: ['mcp:admin'] })), [], 'with roles configured, mcp:admin alone holds nothing');
    assert.deepEqual(caps.rolesOf(person({ groups: ['platform'] })), ['platform']);
  });

  test('without roles, the scope mcp:admin holds every capability', () => {
    const caps = new Capabilities(parseConfig(base({}), 'keygate.yaml', {}).access);
    assert.equal(caps.configured, false);
    assert.deepEqual(caps.of(person({ scopes: ['mcp:admin'] })), ['gateway_management', 'server_management', 'identity_management', 'user_management', 'client_management', 'audit_log']);
    assert.deepEqual(caps.of(person({ scopes: ['mcp:read'], roles: ['admin'] })), []);
  });

  test('a role name carries no meaning: only members and capabilities count', () => {
    const caps = new Capabilities(parseConfig(base({}, { access: { roles: [{ name: 'admin', capabilities: ['audit_log'], members: { users: ['carol'] } }] } }), 'keygate.yaml', {}).access);
    assert.deepEqual(caps.of(person({ subject: 'dave', roles: ['admin'], groups: ['admin'] })), []);
    assert.deepEqual(caps.of(person({ subject: 'carol' })), ['audit_log']);
  });

  const bad: [string, unknown, RegExp][] = [
    ['an unknown capability', { roles: [{ name: 'x', capabilities: ['superuser'], members: { users: ['a'] } }] }, /access\.roles\[0\]\.capabilities\[0\]: expected a capability: gateway_management, server_management, identity_management, user_management, client_management, audit_log/],
    ['a role without members', { roles: [{ name: 'x', capabilities: ['audit_log'], members: {} }] }, /access\.roles\[0\]\.members: a role needs members/],
    ['a role without capabilities', { roles: [{ name: 'x', capabilities: [], members: { users: ['a'] } }] }, /access\.roles\[0\]\.capabilities: a role grants at least one capability/],
    ['two roles with one name', { roles: [{ name: 'x', capabilities: ['audit_log'], members: { users: ['a'] } }, { name: 'x', capabilities: ['audit_log'], members: { users: ['b'] } }] }, /access\.roles\[1\]\.name: two roles are named "x"/],
    ['an empty role list', { roles: [] }, /access\.roles: leave access\.roles out for the default/],
    ['an unknown key', { roles: [{ name: 'x', capabilities: ['audit_log'], members: { users: ['a'] }, grants: ['all'] }] }, /access\.roles\[0\]: unknown key "grants"/],
  ];
  for (const [what, access, expected] of bad) {
    test(`refused with the key path: ${what}`, () => {
      const problems = problemsOf(base({}, { access }));
      assert.ok(problems.some((p) => expected.test(p)), `expected ${expected} in:\n${problems.join('\n')}`);
    });
  }
});
