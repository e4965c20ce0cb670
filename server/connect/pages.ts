import type { Response } from 'express';
import { type Html, html, sendPage } from '../http/html.ts';
import type { IdentityView, ServerState } from '../vault/server-state.ts';

// The connect pages, for people without the extension: their per-user
// servers and what each needs, a form per server, and OAuth connections.
// Plain HTML forms; secrets are typed in, never shown back.

const STATE_TEXT: Record<ServerState['state'], string> = {
  ready: 'Ready',
  needs_credentials: 'Needs credentials',
  needs_authorization: 'Needs authorization',
  disabled: 'Disabled by an admin',
  unavailable: 'Unavailable',
  client_credentials: 'Kept by your client',
};

const sentence = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}`;

function badge(s: ServerState): Html {
  return html`<span class="state ${s.state}">${STATE_TEXT[s.state]}</span>`;
}

function describeIdentity(i: IdentityView): string {
  const name = i.label ?? (i.upstream_account ? `${i.upstream_account}` : `${i.kind} identity`);
  const whose = i.owner === 'you' ? (i.availability === 'global' ? 'yours, shared with your organization' : 'yours, private') : i.owner === 'organization' ? 'organization service account' : 'shared by a colleague';
  return `${name} (${whose})`;
}

export function renderIndex(res: Response, input: { username: string; servers: ServerState[] }): void {
  const rows = input.servers.map(
    (s) => html`<section class="server">
<h2>${s.upstream.name} <span class="hint">on ${s.gateway.name}</span></h2>
<p>${badge(s)} ${s.scheme === 'shared' ? 'Everyone uses a shared service account.' : 'You use your own identity.'}</p>
${s.reason ? html`<p class="hint">${sentence(s.reason)}</p>` : ''}
${s.scheme === 'per_user' && s.storage === 'registry' ? html`<a class="button" href="${s.connect_url}">${s.state === 'ready' ? 'Manage' : 'Connect'}</a>` : ''}
</section>`,
  );
  sendPage(
    res,
    200,
    'Your servers',
    html`<h1>Your MCP servers</h1>
<p class="lead">Signed in as <strong>${input.username}</strong>. Servers marked "You use your own identity" need your account before their tools work.</p>
${rows.length ? rows : html`<p>No gateway is open to you yet.</p>`}`,
    { wide: true },
  );
}

export function renderServer(
  res: Response,
  input: { state: ServerState; csrf: string; action: (step: string) => string; index: string; notice?: string | undefined; error?: string | undefined; status?: number },
): void {
  const s = input.state;
  const credential = s.credential;
  const csrf = html`<input type="hidden" name="csrf" value="${input.csrf}">`;
  const others = s.choices.filter((c) => c.id !== s.identity?.id && !c.disabled);

  const chooser = others.length
    ? html`<form method="post" action="${input.action('select')}">${csrf}
<fieldset><legend>Use another identity</legend>
${others.map((c, i) => html`<div><input type="radio" id="choice-${i}" name="identity" value="${c.id}"${i === 0 ? html` checked` : ''}> <label class="inline" for="choice-${i}">${describeIdentity(c)}</label></div>`)}
</fieldset><button type="submit">Use this identity</button></form>`
    : '';

  const availability = html`<div><input type="checkbox" id="global" name="availability" value="global"> <label class="inline" for="global">Let others in my organization select this identity</label></div>`;

  let connect: Html | string = '';
  if (credential.type === 'oauth') {
    connect = html`<form method="post" action="${input.action('authorize')}">${csrf}
<p>Keygate will send you to ${s.upstream.name} to sign in. It keeps the token it receives encrypted, renews it when it expires, and uses it only for calls you make through ${s.gateway.name}.</p>
${availability}
<button type="submit">${s.identity ? 'Reconnect' : 'Continue'} to ${s.upstream.name}</button></form>`;
  } else if (credential.type === 'fields' && credential.fields) {
    const inputs = credential.fields.map((f) => {
      const current = f.secret ? undefined : s.identity?.public_values?.[f.name];
      const set = s.identity?.fields_set?.includes(f.name);
      return html`<label for="field-${f.name}">${f.label}${f.required ? '' : ' (optional)'}</label>
<input id="field-${f.name}" name="field_${f.name}" type="${f.secret ? 'password' : 'text'}" autocomplete="off"${f.placeholder ? html` placeholder="${f.placeholder}"` : ''}${current ? html` value="${current}"` : ''}${f.required && !set ? html` required` : ''}>
${f.description ? html`<p class="hint">${f.description}</p>` : ''}${f.secret && set ? html`<p class="hint">Set. Leave empty to keep it.</p>` : ''}`;
    });
    connect = html`<form method="post" action="${input.action('credentials')}" autocomplete="off">${csrf}
${inputs}
<label for="label">Name this identity (optional)</label><input id="label" name="label" type="text" maxlength="100"${s.identity?.label ? html` value="${s.identity.label}"` : ''}>
${availability}
<button type="submit">Save</button></form>`;
  } else if (credential.type === 'bearer' || credential.type === 'header') {
    connect = html`<form method="post" action="${input.action('credentials')}" autocomplete="off">${csrf}
<label for="secret">${credential.type === 'bearer' ? 'Token' : 'Value'}</label>
<input id="secret" name="secret" type="password" autocomplete="off" required>
<label for="label">Name this identity (optional)</label><input id="label" name="label" type="text" maxlength="100">
${availability}
<button type="submit">Save</button></form>`;
  }

  sendPage(
    res,
    input.status ?? 200,
    s.upstream.name,
    html`<h1>${s.upstream.name}</h1>
<p class="lead">On ${s.gateway.name} · ${badge(s)}</p>
${input.notice ? html`<p class="ok" role="status">${input.notice}</p>` : ''}
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : ''}
${s.upstream.description ? html`<p>${s.upstream.description}</p>` : ''}
${s.identity ? html`<p>In use: <strong>${describeIdentity(s.identity)}</strong></p>` : s.reason ? html`<p>${sentence(s.reason)}</p>` : ''}
${s.state === 'disabled' ? '' : connect}
${chooser}
${s.identity?.owner === 'you' ? html`<form method="post" action="${input.action('disconnect')}">${csrf}<button type="submit" class="secondary">Disconnect and delete this identity</button></form>` : ''}
<p><a href="${input.index}">All your servers</a></p>`,
    { wide: true },
  );
}
