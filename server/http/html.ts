import { randomBytes } from 'node:crypto';
import type { Response } from 'express';

// Pages a person sees: plain HTML forms that work with JavaScript off, a
// strict CSP (no script at all), never frameable, never cached.

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Tagged template that escapes every interpolated value unless it is already `Html`. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    const text = Array.isArray(v) ? v.map((x) => (x instanceof Html ? x.value : escapeHtml(String(x)))).join('') : v instanceof Html ? v.value : escapeHtml(String(v ?? ''));
    out += text + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1f2328; --bg: #f6f8fa; --card: #fff; --line: #d0d7de; --accent: #0969da; --bad: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --card: #161b22; --line: #30363d; --accent: #4493f8; --bad: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 24rem; margin: 10vh auto; padding: 2rem; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
main.wide { max-width: 44rem; margin-top: 5vh; }
section.server { border-top: 1px solid var(--line); padding: 1rem 0 .5rem; }
section.server h2 { font-size: 1.05rem; margin: 0 0 .25rem; }
.state { display: inline-block; font-size: .8rem; font-weight: 600; padding: .1rem .5rem; border-radius: 999px; border: 1px solid var(--line); }
.state.ready { color: #1a7f37; border-color: #1a7f37; }
.state.needs_credentials, .state.needs_authorization { color: #9a6700; border-color: #9a6700; }
.state.disabled, .state.unavailable { color: var(--bad); border-color: var(--bad); }
.hint { font-size: .85rem; opacity: .8; margin: .15rem 0 0; }
.ok { color: #1a7f37; border: 1px solid #1a7f37; border-radius: 6px; padding: .5rem .75rem; margin: 0 0 1rem; }
fieldset { border: 0; padding: 0; margin: .75rem 0 0; }
label.inline { display: inline; font-weight: normal; }
a.button { display: inline-block; margin-top: .75rem; }
h1 { font-size: 1.25rem; margin: 0 0 .25rem; }
p.lead { margin: 0 0 1.25rem; opacity: .8; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=text], input[type=password] { width: 100%; padding: .5rem .625rem; font: inherit; color: inherit; background: transparent; border: 1px solid var(--line); border-radius: 6px; }
input:focus-visible, button:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
button { margin-top: 1.25rem; width: 100%; padding: .55rem; font: inherit; font-weight: 600; color: #fff; background: var(--accent); border: 0; border-radius: 6px; cursor: pointer; }
.error { color: var(--bad); border: 1px solid var(--bad); border-radius: 6px; padding: .5rem .75rem; margin: 0 0 1rem; }
dl { margin: 0 0 1rem; font-size: .9rem; } dt { font-weight: 600; } dd { margin: 0 0 .5rem; overflow-wrap: anywhere; }
code { font-size: .85em; }
.muted { opacity: .7; font-weight: normal; }
.actions { display: flex; gap: .75rem; }
.actions button { flex: 1; }
button.secondary { color: var(--fg); background: transparent; border: 1px solid var(--line); }
`;

export function sendPage(res: Response, status: number, title: string, body: Html, options: { wide?: boolean } = {}): void {
  const nonce = randomBytes(16).toString('base64');
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      // No script at all; the form posts to this origin. (form-action is left out:
      // Chromium applies it to the redirect that follows the POST, which must
      // reach the client's redirect URI.)
      'Content-Security-Policy': `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'`,
      'X-Frame-Options': 'DENY',
      'X-Content-Type-Options': 'nosniff',
      // same-origin, not no-referrer: browsers then send a real Origin with our own form posts (checked on the connect pages).
      'Referrer-Policy': 'same-origin',
    })
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
        `<title>${escapeHtml(title)} · Keygate</title><style nonce="${nonce}">${STYLE}</style></head><body><main${options.wide ? ' class="wide"' : ''}>${body.value}</main></body></html>`,
    );
}

export function sendErrorPage(res: Response, status: number, title: string, message: string): void {
  sendPage(res, status, title, html`<h1>${title}</h1><p class="error" role="alert">${message}</p><p>You can close this window.</p>`);
}
