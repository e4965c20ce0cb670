#!/usr/bin/env node
// Writes docs/security-tests.md: every test of the security-relevant suites,
// by file, with its name (test names say the rule they prove). Run it after
// adding tests: node scripts/catalogue.mjs
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const areas = [
  ['Authorization endpoint, PKCE, codes, tokens, refresh rotation, DCR', ['integration/authorization-server.test.ts', 'integration/registration-limits.test.ts']],
  ['Clients: real registrations, configured clients, Client ID Metadata Documents, metadata paths', ['integration/clients.test.ts']],
  ['Login and consent: CSRF, browser binding, throttling, prompt, long passwords, oversized input', ['integration/login-and-consent.test.ts', 'unit/throttle.test.ts', 'e2e/sign-in-page.test.ts', 'integration/sign-in-event-loop.test.ts']],
  ['Revocation, introspection, signing keys', ['integration/tokens.test.ts']],
  ['Redirect URI policy', ['unit/redirect-uri.test.ts']],
  ['Tokens from other issuers: JWT/JWKS', ['integration/inbound-jwt.test.ts']],
  ['Tokens from other issuers: introspection, UserInfo, validation endpoint', ['integration/inbound-opaque.test.ts']],
  ['Outbound fetches (SSRF)', ['integration/inbound-ssrf.test.ts', 'unit/outbound.test.ts']],
  ['Federated sign-in', ['integration/federated-oidc.test.ts', 'integration/federated-github.test.ts', 'integration/federated-startup.test.ts', 'integration/federated-roles.test.ts', 'e2e/federated-sign-in.test.ts']],
  ['Auth configuration', ['unit/auth-config.test.ts', 'unit/config.test.ts']],
  ['Gateway request path', ['integration/gateway.test.ts', 'integration/bad-input.test.ts', 'integration/merged-fast-path.test.ts', 'integration/merged-names.test.ts', 'integration/conformance.test.ts', 'integration/refusals-both-endpoints.test.ts', 'integration/upstream-transport.test.ts', 'integration/merged-upstream-eras.test.ts']],
  ['Scopes on the MCP endpoints', ['integration/scopes.test.ts']],
  ['Without the built-in authorization server', ['integration/no-authorization-server.test.ts']],
  ['The registry\'s log', ['integration/log-injection.test.ts']],
  ['Start-up: the CLI loads no registry module, a stale build never runs', ['integration/startup.test.ts']],
  ['Store and vault', ['unit/store.test.ts', 'integration/postgres-store.test.ts', 'integration/store-migrate.test.ts', 'unit/vault.test.ts', 'integration/vault-rotate.test.ts']],
  ['Several instances', ['integration/cluster.test.ts', 'integration/cluster-state.test.ts', 'integration/cluster-keys.test.ts', 'unit/key-ring.test.ts', 'integration/cluster-throttles.test.ts', 'integration/cluster-sessions.test.ts', 'unit/roaming-sessions.test.ts', 'integration/cluster-refresh.test.ts', 'integration/cluster-skew.test.ts', 'integration/postgres-audit.test.ts', 'integration/cluster-audit.test.ts', 'integration/cluster-trust-proxy.test.ts', 'integration/cluster-health.test.ts', 'integration/identity-truth-cluster.test.ts']],
  ['Identities, connecting, per-user and shared credentials', ['integration/identities.test.ts', 'integration/gateway-identities.test.ts', 'integration/stand-in-session.test.ts', 'integration/list-changed.test.ts', 'integration/identity-truth.test.ts', 'unit/webview-render.test.ts', 'integration/upstream-refresh.test.ts', 'e2e/connect-pages.test.ts']],
  ['Tool filters and policies (tools, resources, prompts)', ['integration/gateway-policy.test.ts', 'integration/tool-policies.test.ts', 'integration/resource-prompt-policies.test.ts', 'unit/policy-config.test.ts']],
  ['Agents: client credentials and token exchange', ['integration/agents.test.ts', 'integration/admin-token-exchange.test.ts', 'unit/agents-config.test.ts']],
  ['Admin API, capabilities, break-glass, offboarding, audit', ['integration/admin-api.test.ts', 'integration/admin-capabilities.test.ts', 'integration/admin-clients.test.ts', 'integration/break-glass.test.ts', 'integration/offboarding.test.ts', 'integration/audit-log.test.ts', 'integration/admin-audit.test.ts', 'integration/cli-admin.test.ts', 'integration/cli-login.test.ts', 'integration/admin-console.test.ts', 'e2e/admin-console.test.ts']],
  ['Reliability: faults and recovery', ['integration/faults-upstream.test.ts', 'integration/faults-jwks.test.ts', 'integration/faults-postgres.test.ts', 'integration/faults-crash.test.ts', 'integration/faults-disk-full.test.ts', 'integration/upstream-connections.test.ts']],
  ['Extension: tokens, secrets and logs', ['unit/extension-oauth-flow.test.ts', 'unit/extension-refresher.test.ts', 'unit/extension-session-store.test.ts', 'unit/extension-log.test.ts', 'unit/extension-client-credentials.test.ts']],
];

function names(file) {
  const text = readFileSync(join(root, 'test', file), 'utf8');
  const found = [];
  for (const m of text.matchAll(/\btest\(\s*(`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")/g)) found.push(m[1].slice(1, -1).replace(/\\(.)/g, '$1'));
  return found;
}

let total = 0;
const lines = ['# Security test catalogue', '', 'Generated by `node scripts/catalogue.mjs` from the test files: each test is named after the rule it proves. Tables of cases (one `test` over many inputs) count once here.', ''];
for (const [area, files] of areas) {
  const tests = files.flatMap((f) => names(f).map((n) => [f, n]));
  total += tests.length;
  lines.push(`## ${area} (${tests.length})`, '');
  for (const [f, n] of tests) lines.push(`- ${n.replace(/\$\{[^}]+\}/g, '…')} — \`test/${f}\``);
  lines.push('');
}
lines.splice(3, 0, '', `${total} tests in all.`);
writeFileSync(join(root, 'docs', 'security-tests.md'), `${lines.join('\n')}`);
console.log(`docs/security-tests.md: ${total} tests`);

