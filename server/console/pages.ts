import { createHash } from 'node:crypto';
import type { listClients } from '../api/admin/clients.ts';
import type { listConnections } from '../api/admin/connections.ts';
import type { listGateways } from '../api/admin/gateways.ts';
import type { listIdentities } from '../api/admin/identities.ts';
import type { listUpstreams } from '../api/admin/upstreams.ts';
import type { listUsers } from '../api/admin/users.ts';
import type { PolicyRuleInput } from '../config/sections/policies.ts';
import { type Html, html } from '../http/html.ts';

// The console's record pages, from the admin API's own views (the same
// allowlists: never a secret). Records the configuration file owns carry a
// mark and no form but the break-glass switch, which the API allows on them.

type Item<F extends (...args: never[]) => Promise<unknown[]>> = Awaited<ReturnType<F>>[number];
type Switched = { switch?: { by?: string; at?: number; reason?: string } | undefined };
export type GatewayView = Item<typeof listGateways> & Switched;
export type UpstreamView = Item<typeof listUpstreams> & Switched;
export type IdentityView = Item<typeof listIdentities> & Switched;
export type UserView = Item<typeof listUsers>;
export type ClientView = Item<typeof listClients>;
export type ConnectionView = Item<typeof listConnections>;

export interface PageContext {
  home: string;
  csrf: string;
}

/** The console's forms that change something: break-glass switches, and a client's new secret. */
export type SwitchGroup = 'gateways' | 'upstreams' | 'identities' | 'users' | 'clients' | 'connections';

export const when = (epochSeconds: number | undefined): string => (epochSeconds ? `${new Date(epochSeconds * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC` : '—');
const list = (values: readonly string[] | undefined): string => (values?.length ? values.join(', ') : '—');
const fromFile = html`<span class="badge config" title="Change it in the configuration file; only break-glass works here">from the configuration file</span>`;

type SwitchState = { disabled: boolean } & Switched;

function state(s: SwitchState, on = 'Enabled', off = 'Disabled'): Html {
  const by = s.switch?.by ? html`<br><span class="muted">${s.disabled ? off.toLowerCase() : on.toLowerCase()} by ${s.switch.by}, ${when(s.switch.at)}${s.switch.reason ? html`: “${s.switch.reason}”` : ''}</span>` : '';
  return html`<span class="badge ${s.disabled ? 'off' : 'on'}">${s.disabled ? off : on}</span>${by}`;
}

/** The break-glass switch of one record: one click, with a required reason. */
export function switchForm(ctx: PageContext, group: SwitchGroup, id: string, disabled: boolean, what: string): Html {
  const action = disabled ? 'enable' : 'disable';
  const verb = group === 'users' ? (disabled ? 'Reactivate' : 'Deactivate') : disabled ? 'Enable' : 'Disable';
  const field = `reason-${group}-${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;
  return html`<form class="switch" method="post" action="${ctx.home}/${group}/switch"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="id" value="${id}"><input type="hidden" name="action" value="${action}"><label for="${field}">Reason to ${verb.toLowerCase()} <span class="sr-only">${what}</span></label><input type="text" id="${field}" name="reason" required maxlength="500" autocomplete="off"><button type="submit"${disabled ? '' : html` class="danger"`}>${verb}<span class="sr-only"> ${what}</span></button></form>`;
}

function match(m: Record<string, readonly string[] | undefined> | undefined): string {
  if (!m) return '';
  return Object.entries(m)
    .filter(([, v]) => v?.length)
    .map(([k, v]) => `${k}: ${v!.join(', ')}`)
    .join('; ');
}

function rule(r: PolicyRuleInput): Html {
  const what = [r.tools && `tools ${r.tools.join(', ')}`, r.resources && `resources ${r.resources.join(', ')}`, r.prompts && `prompts ${r.prompts.join(', ')}`].filter(Boolean).join(', ') || 'everything';
  return html`<li><span class="badge ${r.action === 'deny' ? 'bad' : 'ok'}">${r.action}</span> ${what}${r.when ? ` when ${match(r.when)}` : ''}${r.unless ? ` unless ${match(r.unless)}` : ''}${r.reason ? html` <span class="muted">“${r.reason}”</span>` : ''}</li>`;
}

export function gatewaysPage(ctx: PageContext, gateways: GatewayView[]): Html {
  if (!gateways.length) return html`<p>No gateways yet.</p>`;
  return html`${gateways.map(
    (g) => html`<section class="card" aria-labelledby="gw-${g.id}"><h2 id="gw-${g.id}">${g.name} <code>${g.id}</code> ${g.source === 'config' ? fromFile : ''}</h2>
<dl class="facts"><dt>Visibility</dt><dd>${g.visibility === 'public' ? 'public (anonymous callers too)' : 'private (signed-in callers)'}</dd>
<dt>Members</dt><dd>${g.members ? match(g.members) || 'anyone signed in' : g.visibility === 'private' ? 'anyone signed in' : 'everyone'}</dd>
<dt>Endpoint</dt><dd><code>${g.mcp_url}</code></dd><dt>State</dt><dd>${state(g)}</dd></dl>
${switchForm(ctx, 'gateways', g.id, g.disabled, `gateway ${g.id}`)}
<table><caption class="sr-only">Servers of ${g.name}</caption><thead><tr><th scope="col">Server</th><th scope="col">Upstream</th><th scope="col">Identity scheme</th><th scope="col">Tools</th><th scope="col">Policies</th></tr></thead><tbody>
${g.servers.map(
  (s) => html`<tr><td><code>${s.name}</code></td><td>${s.upstream}</td><td>${s.identity === 'shared' ? html`shared${s.shared_identity ? html` (<code>${s.shared_identity}</code>)` : ''}` : `per user${s.storage === 'client' ? ', kept by the client' : ''}`}</td>
<td>${s.tools ? `${s.tools.allow ? `allow ${s.tools.allow.join(', ')}` : 'all'}${s.tools.deny.length ? `; deny ${s.tools.deny.join(', ')}` : ''}` : 'all'}</td>
<td>${s.policies?.length ? html`<ol class="plain">${s.policies.map(rule)}</ol>` : 'none'}</td></tr>`,
)}</tbody></table></section>`,
  )}`;
}

export function upstreamsPage(ctx: PageContext, upstreams: UpstreamView[]): Html {
  if (!upstreams.length) return html`<p>No upstreams yet.</p>`;
  return html`<table><thead><tr><th scope="col">Upstream</th><th scope="col">URL</th><th scope="col">Credential</th><th scope="col">State</th><th scope="col">Break-glass</th></tr></thead><tbody>
${upstreams.map(
  (u) => html`<tr><td>${u.name} <code>${u.id}</code> ${u.source === 'config' ? fromFile : ''}</td><td><code>${u.url}</code></td><td>${u.credential.type}</td><td>${state(u)}</td><td>${switchForm(ctx, 'upstreams', u.id, u.disabled, `upstream ${u.id}`)}</td></tr>`,
)}</tbody></table>`;
}

export function identitiesPage(ctx: PageContext, identities: IdentityView[]): Html {
  if (!identities.length) return html`<p>No identities yet.</p>`;
  const row = (i: IdentityView) =>
    html`<tr><td>${i.label ?? i.id} <code>${i.id}</code> ${i.created_by === 'config' ? fromFile : ''}</td><td>${i.upstream}</td><td>${i.kind}${i.fields_set?.length ? html`<br><span class="muted">set: ${i.fields_set.join(', ')}</span>` : ''}</td><td>${i.owner === 'organization' ? 'the organization' : i.owner}</td><td>${i.availability}</td><td>${when(i.last_used)}</td><td>${state(i)}</td><td>${switchForm(ctx, 'identities', i.id, i.disabled, `identity ${i.id}`)}</td></tr>`;
  const table = (caption: string, rows: IdentityView[]) =>
    html`<h2>${caption}</h2>${rows.length ? html`<table><thead><tr><th scope="col">Identity</th><th scope="col">Upstream</th><th scope="col">Kind</th><th scope="col">Owner</th><th scope="col">Availability</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col">Break-glass</th></tr></thead><tbody>${rows.map(row)}</tbody></table>` : html`<p class="muted">None.</p>`}`;
  return html`<p class="muted">Metadata only: a credential's value is never shown here. “Last used”: the latest call made with it, to the minute (on any instance).</p>
${table('Shared (service accounts and global identities)', identities.filter((i) => i.availability === 'global'))}${table("People's own", identities.filter((i) => i.availability !== 'global'))}`;
}

export function usersPage(ctx: PageContext, users: UserView[], me: string): Html {
  return html`<p class="muted">Deactivating a person offboards them: every grant they hold ends (their tokens are refused from the next request on), every browser session ends, and they cannot sign in until reactivated. Nothing they own is deleted.</p>
<table><thead><tr><th scope="col">Person</th><th scope="col">Provider</th><th scope="col">Groups</th><th scope="col">Scopes</th><th scope="col">Last sign-in</th><th scope="col">State</th><th scope="col">Offboarding</th></tr></thead><tbody>
${users.map(
  (u) => html`<tr><td>${u.name ?? u.username} <code>${u.sub}</code>${u.email ? html`<br><span class="muted">${u.email}</span>` : ''}</td><td>${u.provider === 'builtin' ? html`builtin ${fromFile}` : u.provider}</td><td>${list(u.groups)}</td><td>${list(u.scopes)}</td><td>${when(u.last_login)}</td><td>${state(u, 'Active', 'Deactivated')}</td>
<td>${u.sub === me ? html`<span class="muted">you</span>` : switchForm(ctx, 'users', u.sub, u.disabled, `user ${u.sub}`)}</td></tr>`,
)}</tbody></table>`;
}

const SOURCES: Record<ClientView['source'], string> = { builtin: 'built in', config: 'configuration file', dynamic: 'dynamic registration', admin: 'made by an admin', metadata_document: 'metadata document' };

export function clientsPage(ctx: PageContext, clients: ClientView[], secret?: { client_id: string; value: string }): Html {
  const shown = secret
    ? html`<section class="card" aria-labelledby="new-secret"><h2 id="new-secret">New secret for <code>${secret.client_id}</code></h2><p>Copy it now: it is shown this once, and only its hash is kept. The old secret no longer works.</p><p class="secret" id="client-secret">${secret.value}</p></section>`
    : '';
  return html`${shown}<table><thead><tr><th scope="col">Client</th><th scope="col">Source</th><th scope="col">Type</th><th scope="col">Grants</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead><tbody>
${clients.map(
  (c) => html`<tr><td>${c.name ?? c.client_id}<br><code>${c.client_id}</code></td><td>${c.source === 'config' ? fromFile : SOURCES[c.source]}</td><td>${c.type}</td><td>${list(c.grant_types)}</td><td>${state(c)}</td>
<td>${switchForm(ctx, 'clients', c.client_id, c.disabled, `client ${c.client_id}`)}${
    !c.read_only && c.type === 'confidential'
      ? html`<form method="post" action="${ctx.home}/clients/secret"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="id" value="${c.client_id}"><button type="submit">New secret<span class="sr-only"> for client ${c.client_id}</span></button></form>`
      : ''
  }</td></tr>`,
)}</tbody></table>`;
}

export function connectionsPage(ctx: PageContext, connections: ConnectionView[]): Html {
  if (!connections.length) return html`<p>No connections yet: they appear once someone calls a gateway.</p>`;
  return html`<p class="muted">A connection is one person's use of one gateway from one client. Disabling it refuses those calls only; their other clients and gateways keep working.</p>
<table><thead><tr><th scope="col">Person</th><th scope="col">Gateway</th><th scope="col">Client</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col">State</th><th scope="col">Break-glass</th></tr></thead><tbody>
${connections.map(
  (c) => html`<tr><td>${c.subject}</td><td>${c.gateway}</td><td><code>${c.client_id ?? '—'}</code></td><td>${when(c.first_seen)}</td><td>${when(c.last_seen)}</td><td>${state(c)}</td><td>${switchForm(ctx, 'connections', c.id, c.disabled, `connection of ${c.subject} to ${c.gateway}`)}</td></tr>`,
)}</tbody></table>`;
}
