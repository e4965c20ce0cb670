import { formProblems, typedValues } from './fields.ts';
import { assertNever, parseMessage, toWebview, type ServerView, type ToExtension, type ToWebview } from './protocol.ts';
import { draftFor, keyOf, renderApp, type UiState } from './render.ts';

// The sidebar webview's script (bundled into dist/webview.js, loaded with the
// render's nonce). It draws what the extension sends, validates credential
// forms as the person types, and posts what they ask for. Typed values live
// only in this page's memory (never in webview state, which VS Code persists
// in clear) and are dropped once saved.

interface VsCodeApi {
  postMessage(message: ToExtension): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;
const announcer = document.getElementById('announce')!;

const ui: UiState = { view: undefined, drafts: new Map(), open: new Set(), results: new Map(), busy: new Set() };

const post = (message: ToExtension) => vscode.postMessage(message);

function serverOf(key: string | undefined): ServerView | undefined {
  return ui.view?.gateways.flatMap((g) => g.servers).find((s) => keyOf(s) === key);
}

/** Redraw, keeping the focused control (and its caret) where it was. */
function draw(): void {
  const active = document.activeElement instanceof HTMLElement && app.contains(document.activeElement) ? document.activeElement : undefined;
  const focusId = active?.id || undefined;
  const focusAction = active && !focusId ? `${active.dataset.action ?? ''}|${active.dataset.key ?? ''}` : undefined;
  const caret = active instanceof HTMLInputElement && active.type !== 'checkbox' ? [active.selectionStart, active.selectionEnd] : undefined;
  app.replaceChildren(...renderApp(ui));
  app.setAttribute('aria-busy', ui.view ? 'false' : 'true');
  let target: HTMLElement | null = null;
  if (focusId) target = document.getElementById(focusId);
  else if (focusAction) target = [...app.querySelectorAll<HTMLElement>('[data-action]')].find((el) => `${el.dataset.action ?? ''}|${el.dataset.key ?? ''}` === focusAction) ?? null;
  if (target) {
    target.focus();
    if (caret && target instanceof HTMLInputElement && caret[0] != null) target.setSelectionRange(caret[0], caret[1] ?? caret[0]);
  }
}

function announce(text: string): void {
  announcer.textContent = text;
}

function receive(message: ToWebview): void {
  switch (message.type) {
    case 'view': {
      ui.view = message.view;
      // Forget drafts of servers that are gone.
      const keys = new Set(message.view.gateways.flatMap((g) => g.servers.map(keyOf)));
      for (const key of [...ui.drafts.keys()]) if (!keys.has(key)) ui.drafts.delete(key);
      draw();
      return;
    }
    case 'result': {
      const key = `${message.gateway}/${message.server}`;
      ui.busy.delete(key);
      ui.results.set(key, { ok: message.ok, message: message.message });
      if (message.ok) {
        // Saved: what was typed is not kept a moment longer.
        ui.drafts.delete(key);
        ui.open.delete(key);
      }
      draw();
      announce(message.message);
      return;
    }
    case 'reveal': {
      const key = `${message.gateway}/${message.server}`;
      ui.open.add(key);
      draw();
      const item = app.querySelector<HTMLElement>(`li[data-key="${CSS.escape(key)}"]`);
      item?.scrollIntoView({ block: 'nearest' });
      (item?.querySelector<HTMLElement>('form input, [data-action="connect"]') ?? item?.querySelector<HTMLElement>('button'))?.focus();
      return;
    }
    default:
      assertNever(message);
  }
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = parseMessage(toWebview, event.data);
  if (!parsed.ok) {
    console.warn(`Keygate sidebar: ignored a message (${parsed.problem})`);
    return;
  }
  receive(parsed.message);
});

app.addEventListener('click', (event) => {
  const button = (event.target as HTMLElement).closest<HTMLElement>('[data-action]');
  if (!button || (button as HTMLButtonElement).disabled) return;
  const key = button.dataset.key;
  const s = serverOf(key);
  const action = button.dataset.action;
  switch (action) {
    case 'signIn':
    case 'selectRegistry':
    case 'refresh':
      post({ type: action });
      return;
    case 'edit':
      if (!s) return;
      ui.open.add(keyOf(s));
      ui.results.delete(keyOf(s));
      draw();
      document.querySelector<HTMLInputElement>(`form[data-key="${CSS.escape(keyOf(s))}"] input`)?.focus();
      return;
    case 'cancel':
      if (!s) return;
      ui.open.delete(keyOf(s));
      ui.drafts.delete(keyOf(s));
      draw();
      return;
    case 'connect':
    case 'disconnect':
      if (!s) return;
      send(s, { type: action, gateway: s.gateway, server: s.server });
      return;
    case 'chooseIdentity': {
      if (!s) return;
      const select = document.getElementById(button.dataset.select ?? '') as HTMLSelectElement | null;
      if (select?.value) send(s, { type: 'chooseIdentity', gateway: s.gateway, server: s.server, identity: select.value });
      return;
    }
    case 'setAvailability': {
      const availability = button.dataset.availability === 'global' ? 'global' : 'private';
      if (s && button.dataset.identity) send(s, { type: 'setAvailability', gateway: s.gateway, server: s.server, identity: button.dataset.identity, availability });
      return;
    }
  }
});

function send(s: ServerView, message: ToExtension): void {
  ui.busy.add(keyOf(s));
  ui.results.delete(keyOf(s));
  draw();
  post(message);
}

app.addEventListener('input', (event) => {
  const input = event.target as HTMLInputElement;
  const s = serverOf(input.closest<HTMLElement>('form')?.dataset.key);
  if (!s) return;
  const draft = draftFor(ui, s);
  if (input.name === 'availability') draft.availability = input.checked ? 'global' : 'private';
  else if (input.dataset.field) {
    draft.values[input.dataset.field] = input.value;
    // Once a field shows a problem, it is checked on every keystroke so the message goes away as soon as it is fixed.
    if (draft.touched.has(input.dataset.field) || draft.submitted) draw();
  }
});

app.addEventListener('focusout', (event) => {
  const input = event.target as HTMLInputElement;
  const s = serverOf(input.closest<HTMLElement>('form')?.dataset.key);
  if (!s || !input.dataset.field) return;
  const draft = draftFor(ui, s);
  if (draft.touched.has(input.dataset.field)) return;
  draft.touched.add(input.dataset.field);
  // Redraw after the focus has moved, so the new focus is kept.
  setTimeout(draw, 0);
});

app.addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  const s = serverOf(form.dataset.key);
  if (!s) return;
  const draft = draftFor(ui, s);
  draft.submitted = true;
  const problems = formProblems(s.fields, draft.values);
  const first = Object.keys(problems)[0];
  if (first) {
    draw();
    document.querySelector<HTMLInputElement>(`form[data-key="${CSS.escape(keyOf(s))}"] input[data-field="${CSS.escape(first)}"]`)?.focus();
    announce(Object.values(problems).join(' '));
    return;
  }
  send(s, { type: 'saveCredentials', gateway: s.gateway, server: s.server, values: typedValues(draft.values), availability: draft.availability });
});

post({ type: 'ready' });
