import { domId, h, type Child } from './dom.ts';
import { fieldProblem } from './fields.ts';
import type { FieldView, GatewayView, IdentityView, ServerView, ViewModel } from './protocol.ts';

// The sidebar, drawn from the view model and what the person has typed so
// far. Pure DOM building; main.ts owns the state and the events. Controls
// are native (button, input, select, checkbox) so the keyboard, screen
// readers and high-contrast themes work as they do everywhere in VS Code.

export interface FormDraft {
  values: Record<string, string>;
  /** Fields the person has left once: their problems are shown from then on. */
  touched: Set<string>;
  availability: 'private' | 'global';
  submitted: boolean;
}

export interface UiState {
  view: ViewModel | undefined;
  drafts: Map<string, FormDraft>;
  /** Forms the person opened (a server that needs credentials has its form open anyway). */
  open: Set<string>;
  results: Map<string, { ok: boolean; message: string }>;
  busy: Set<string>;
}

export const keyOf = (s: Pick<ServerView, 'gateway' | 'server'>) => `${s.gateway}/${s.server}`;

const STATE_LABELS: Record<ServerView['state'], string> = {
  ready: 'ready',
  needs_credentials: 'needs credentials',
  needs_authorization: 'needs authorization',
  disabled: 'disabled by an admin',
  unavailable: 'unavailable',
};

const SCHEME_LABELS: Record<ServerView['scheme'], string> = { per_user: 'per-user', shared: 'shared' };

export function draftFor(ui: UiState, s: ServerView): FormDraft {
  let draft = ui.drafts.get(keyOf(s));
  if (!draft) {
    const values: Record<string, string> = {};
    for (const f of s.fields) if (!f.secret && f.value !== undefined) values[f.name] = f.value;
    draft = { values, touched: new Set(), availability: s.identity?.owner === 'you' ? s.identity.availability : 'private', submitted: false };
    ui.drafts.set(keyOf(s), draft);
  }
  return draft;
}

export function formIsOpen(ui: UiState, s: ServerView): boolean {
  return s.input === 'fields' && s.actions.includes('edit') && (ui.open.has(keyOf(s)) || s.state === 'needs_credentials');
}

export function renderApp(ui: UiState): Node[] {
  const view = ui.view;
  if (!view) return [h('p', { className: 'muted' }, 'Loading…')];
  return [renderHeader(view), ...renderBody(ui, view)].filter((c): c is Node => typeof c === 'object' && c !== null);
}

function renderHeader(view: ViewModel): HTMLElement {
  const host = view.registry ? safeHost(view.registry) : undefined;
  return h(
    'header',
    { className: 'account' },
    h(
      'div',
      { className: 'row' },
      h('span', { className: 'muted' }, 'Registry'),
      h('code', { className: 'registry', title: view.registry ?? '' }, host ?? 'none'),
      h('button', { type: 'button', className: 'link', 'data-action': 'selectRegistry' }, 'Change…'),
    ),
    view.account ? h('div', { className: 'row' }, h('span', { className: 'muted' }, 'Signed in as'), h('strong', { className: 'who' }, view.account)) : null,
  );
}

function renderBody(ui: UiState, view: ViewModel): Child[] {
  switch (view.status) {
    case 'no_registry':
      return [notice('warning', view.message ?? 'Choose a registry first.'), h('button', { type: 'button', className: 'primary', 'data-action': 'selectRegistry' }, 'Select Registry')];
    case 'signed_out':
      return [h('p', {}, 'Sign in to see your gateways and connect your accounts.'), h('button', { type: 'button', className: 'primary', 'data-action': 'signIn' }, 'Sign In')];
    case 'session_ended':
      return [notice('warning', view.message ?? 'Your session ended. Sign in again.'), h('button', { type: 'button', className: 'primary', 'data-action': 'signIn' }, 'Sign In')];
    case 'loading':
      return [h('p', { className: 'muted', role: 'status' }, 'Loading your gateways…')];
    case 'registry_unreachable':
      return [
        notice('error', `${view.message ?? 'The registry does not answer.'} ${retryText(view.retryAt)}`),
        h('button', { type: 'button', className: 'secondary', 'data-action': 'refresh' }, 'Retry Now'),
        ...view.gateways.map((g) => renderGateway(ui, g, true)),
      ];
    case 'ready':
      // Refresh is the view's title-bar action; no second button for it here.
      return [
        view.gateways.length ? null : h('p', { className: 'muted' }, 'No gateway is available to you on this registry.'),
        ...view.gateways.map((g) => renderGateway(ui, g, false)),
      ];
  }
}

function retryText(retryAt: number | undefined): string {
  if (retryAt === undefined) return '';
  const seconds = Math.max(1, Math.round((retryAt - Date.now()) / 1000));
  return `Retrying in about ${seconds} s.`;
}

function notice(kind: 'warning' | 'error', text: string): HTMLElement {
  return h('p', { className: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

function renderGateway(ui: UiState, g: GatewayView, stale: boolean): HTMLElement {
  const headingId = domId('gw', g.id);
  return h(
    'section',
    { className: `gateway${stale ? ' stale' : ''}`, 'aria-labelledby': headingId },
    h('h2', { id: headingId }, g.name, g.name !== g.id ? h('span', { className: 'muted id' }, ` (${g.id})`) : null),
    g.description ? h('p', { className: 'muted' }, g.description) : null,
    h('ul', { className: 'servers' }, ...g.servers.map((s) => renderServer(ui, s, stale))),
  );
}

function renderServer(ui: UiState, s: ServerView, stale: boolean): HTMLElement {
  const key = keyOf(s);
  const id = domId('srv', s.gateway, s.server);
  const busy = ui.busy.has(key) || stale;
  const result = ui.results.get(key);
  const li = h(
    'li',
    { className: `server state-${s.state}`, 'aria-labelledby': `${id}-name`, 'data-key': key },
    h(
      'div',
      { className: 'server-head' },
      h('h3', { id: `${id}-name` }, s.server),
      h('span', { className: 'badge scheme', title: s.scheme === 'per_user' ? 'Each person brings their own identity' : 'Everyone goes through one service account' }, SCHEME_LABELS[s.scheme]),
      h('span', { className: `badge state ${s.state}`, 'data-state': s.state }, STATE_LABELS[s.state]),
    ),
    h('p', { className: 'upstream' }, s.upstreamName, s.storage === 'client' ? h('span', { className: 'muted' }, ' · kept in this editor') : null),
    s.reason ? h('p', { className: 'muted reason' }, s.reason) : null,
    s.pending ? h('p', { className: 'notice info', role: 'status' }, 'Waiting for you to finish in the browser…') : null,
    s.identity ? identityLine(s) : null,
    actions(s, busy, formIsOpen(ui, s)),
    s.actions.includes('choose') ? chooser(s, busy) : null,
    formIsOpen(ui, s) ? credentialForm(ui, s, busy) : null,
    result ? h('p', { className: `result ${result.ok ? 'ok' : 'failed'}`, role: result.ok ? 'status' : 'alert' }, result.message) : null,
  );
  return li;
}

const OWNERS: Record<IdentityView['owner'], string> = { you: 'yours', organization: "the organization's", 'someone else': "a colleague's" };

/** "yours (private)", "Service account (the organization's, global)": each thing said once. */
function identityParts(i: IdentityView): { name: string; details: string } {
  const unnamedOwn = i.owner === 'you' && !i.label;
  const details = [unnamedOwn ? undefined : OWNERS[i.owner], i.availability, i.disabled ? 'disabled by an admin' : undefined].filter(Boolean).join(', ');
  return { name: unnamedOwn ? 'yours' : i.label, details };
}

function identityLine(s: ServerView): HTMLElement {
  const { name, details } = identityParts(s.identity!);
  return h('p', { className: 'identity' }, 'Identity: ', h('strong', {}, name), ` (${details})`);
}

function actions(s: ServerView, busy: boolean, open: boolean): HTMLElement | null {
  const key = keyOf(s);
  const buttons: HTMLElement[] = [];
  const button = (action: string, label: string, kind: 'primary' | 'secondary', extra: Record<string, string> = {}) =>
    h('button', { type: 'button', className: kind, 'data-action': action, 'data-key': key, disabled: busy, ...extra }, label);
  for (const a of s.actions) {
    switch (a) {
      case 'connect':
        buttons.push(button('connect', s.pending ? 'Open the Browser Again' : 'Connect', 'primary'));
        break;
      case 'reconnect':
        buttons.push(button('connect', 'Reconnect', 'secondary'));
        break;
      case 'edit':
        if (!open) buttons.push(button('edit', s.fields.some((f) => f.set) ? 'Change Credentials' : 'Enter Credentials', 'secondary'));
        break;
      case 'disconnect':
        buttons.push(button('disconnect', 'Disconnect', 'secondary'));
        break;
      case 'make_global':
        buttons.push(button('setAvailability', 'Make Global', 'secondary', { 'data-identity': s.identity!.id, 'data-availability': 'global', title: 'Let others in your organization select this identity' }));
        break;
      case 'make_private':
        buttons.push(button('setAvailability', 'Make Private', 'secondary', { 'data-identity': s.identity!.id, 'data-availability': 'private', title: 'Only you may use this identity' }));
        break;
      case 'choose':
        break;
    }
  }
  return buttons.length ? h('div', { className: 'actions' }, ...buttons) : null;
}

function chooser(s: ServerView, busy: boolean): HTMLElement {
  const id = domId('choose', s.gateway, s.server);
  const select = h(
    'select',
    { id, 'data-key': keyOf(s), disabled: busy },
    ...s.choices.map((c) => {
      const { name, details } = identityParts(c);
      const option = h('option', { value: c.id }, `${name.charAt(0).toUpperCase()}${name.slice(1)} (${details})`);
      if (c.id === s.identity?.id) option.selected = true;
      return option;
    }),
  );
  return h(
    'div',
    { className: 'choose row' },
    h('label', { for: id }, 'Use identity'),
    select,
    h('button', { type: 'button', className: 'secondary', 'data-action': 'chooseIdentity', 'data-key': keyOf(s), 'data-select': id, disabled: busy }, 'Use'),
  );
}

function credentialForm(ui: UiState, s: ServerView, busy: boolean): HTMLElement {
  const draft = draftFor(ui, s);
  const formId = domId('form', s.gateway, s.server);
  const form = h('form', { className: 'credentials', id: formId, 'data-key': keyOf(s), novalidate: true, 'aria-label': `Credentials for ${s.server}` });
  for (const f of s.fields) form.append(fieldRow(formId, f, draft));
  if (s.storage === 'registry') {
    const checkId = `${formId}--global`;
    const check = h('input', { type: 'checkbox', id: checkId, name: 'availability', 'data-key': keyOf(s) });
    check.checked = draft.availability === 'global';
    form.append(h('div', { className: 'field check' }, check, h('label', { for: checkId }, 'Let others in my organization select this identity')));
  } else {
    form.append(h('p', { className: 'muted' }, "Kept in this editor's secret storage, never in the registry."));
  }
  form.append(
    h(
      'div',
      { className: 'actions' },
      h('button', { type: 'submit', className: 'primary', disabled: busy }, busy ? 'Saving…' : 'Save'),
      s.state === 'needs_credentials' ? null : h('button', { type: 'button', className: 'secondary', 'data-action': 'cancel', 'data-key': keyOf(s) }, 'Cancel'),
    ),
  );
  return form;
}

function fieldRow(formId: string, f: FieldView, draft: FormDraft): HTMLElement {
  const id = `${formId}--${f.name}`;
  const value = draft.values[f.name] ?? '';
  const problem = draft.touched.has(f.name) || draft.submitted ? fieldProblem(f, value) : undefined;
  const hints: string[] = [];
  if (f.description) hints.push(f.description);
  if (f.set && f.secret) hints.push('A value is stored. Leave this empty to keep it.');
  const input = h('input', {
    id,
    name: f.name,
    type: f.secret ? 'password' : 'text',
    placeholder: f.placeholder,
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-required': f.required && !f.set ? 'true' : undefined,
    'aria-invalid': problem ? 'true' : undefined,
    'aria-describedby': [hints.length ? `${id}--hint` : '', problem ? `${id}--error` : ''].filter(Boolean).join(' ') || undefined,
    'data-field': f.name,
  });
  input.value = value;
  return h(
    'div',
    { className: `field${problem ? ' invalid' : ''}` },
    h('label', { for: id }, f.label, f.required && !f.set ? h('span', { className: 'required', 'aria-hidden': 'true' }, ' *') : h('span', { className: 'muted' }, f.required ? '' : ' (optional)'), f.set ? h('span', { className: 'badge set' }, 'set') : null),
    input,
    hints.length ? h('p', { className: 'hint', id: `${id}--hint` }, hints.join(' ')) : null,
    problem ? h('p', { className: 'error', id: `${id}--error` }, problem) : null,
  );
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
