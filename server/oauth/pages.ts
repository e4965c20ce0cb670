import type { Response } from 'express';
import { html, sendPage } from '../http/html.ts';
import type { Client } from './clients.ts';
import type { Interaction } from './interaction.ts';

// The two pages of an authorization: the login form and the consent form.
// Both are plain HTML forms that work with JavaScript off.

// What each scope lets the client do, as the MCP endpoints enforce it (server/gateway/scopes.ts).
const SCOPE_TEXT: Record<string, string> = {
  'mcp:read': 'Use the MCP servers you can reach: connect, list their tools, resources and prompts, and read them',
  'mcp:write': 'Call tools on the MCP servers you can reach (tools may change things)',
  'mcp:admin': 'Administer this registry (gateways, identities, users and clients)',
  offline_access: 'Stay connected while you are away (refresh tokens); on its own it reaches no MCP server',
};

export function describeScope(scope: string): string {
  return SCOPE_TEXT[scope] ?? scope;
}

/** Where the browser returns: the host for web redirects, the scheme for app redirects. */
export function redirectTarget(redirectUri: string): string {
  const url = new URL(redirectUri);
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.host;
  return `${url.protocol}//${url.host}`;
}

function clientLabel(client: Client) {
  const name = client.client_name ?? client.client_id;
  // A dynamically registered client, or one described by its own metadata document, names itself: say so.
  return client.source === 'dynamic' || client.source === 'metadata_document' ? html`<strong>${name}</strong> <span class="muted">(unverified name)</span>` : html`<strong>${name}</strong>`;
}

export function renderLogin(
  res: Response,
  input: { action: string; interaction: Interaction; client: Client; status?: number; error?: string; username?: string; retryAfter?: number },
): void {
  const { interaction, client, username = '' } = input;
  if (input.retryAfter) res.set('Retry-After', String(input.retryAfter));
  sendPage(
    res,
    input.status ?? 200,
    'Sign in',
    html`<h1>Sign in to Keygate</h1>
<p class="lead">${clientLabel(client)} is asking to use your MCP servers.</p>
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
<form method="post" action="${input.action}">
<input type="hidden" name="csrf" value="${interaction.csrf}">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${username}" autocomplete="username" autocapitalize="none" spellcheck="false" required${username ? '' : html` autofocus`}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${username ? html` autofocus` : ''}>
<button type="submit">Sign in</button>
</form>
<dl><dt>Returns to</dt><dd><code>${redirectTarget(interaction.redirect_uri)}</code></dd></dl>`,
  );
}

export function renderConsent(
  res: Response,
  input: { action: string; interaction: Interaction; client: Client; username: string; scopes: string[]; resources: string[] },
): void {
  const { interaction, client } = input;
  sendPage(
    res,
    200,
    'Allow access',
    html`<h1>Allow access?</h1>
<p class="lead">${clientLabel(client)} wants to use Keygate as <strong>${input.username}</strong>.</p>
<dl>
<dt>It will be able to</dt>
${input.scopes.length ? input.scopes.map((s) => html`<dd>${describeScope(s)}</dd>`) : html`<dd>Use the MCP servers you can reach</dd>`}
<dt>On</dt>
${input.resources.map((r) => html`<dd><code>${r}</code></dd>`)}
<dt>Returns to</dt><dd><code>${redirectTarget(interaction.redirect_uri)}</code></dd>
<dt>Client id</dt><dd><code>${client.client_id}</code></dd>
</dl>
<form method="post" action="${input.action}">
<input type="hidden" name="csrf" value="${interaction.csrf}">
<div class="actions">
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
<button type="submit" name="action" value="approve">Allow</button>
</div>
</form>`,
  );
}
