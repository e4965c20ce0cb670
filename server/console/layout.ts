import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Response } from 'express';
import { type Html, html } from '../http/html.ts';

// The console's frame: one stylesheet and two scripts, served by the registry
// under /admin/assets (never inline), each tag carrying the response's nonce;
// a CSP that allows nothing else (no 'unsafe-inline', no other origin),
// framing refused, never cached, and a skip link before the navigation.

interface Asset {
  type: string;
  body: Buffer;
  /** Part of the URL, so a new version is never served from a stale cache. */
  version: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const chartDir = dirname(createRequire(import.meta.url).resolve('chart.js'));

function asset(path: string, type: string): Asset {
  const body = readFileSync(path);
  return { type, body, version: createHash('sha256').update(body).digest('base64url').slice(0, 12) };
}

export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['console.css', asset(join(here, 'assets/console.css'), 'text/css; charset=utf-8')],
  ['console.js', asset(join(here, 'assets/console.js'), 'text/javascript; charset=utf-8')],
  ['chart.umd.min.js', asset(join(chartDir, 'chart.umd.min.js'), 'text/javascript; charset=utf-8')],
]);

export interface NavItem {
  path: string;
  label: string;
}

export interface Frame {
  /** The console's URL path (`/admin`, below the public URL's path). */
  home: string;
  /** The pages this person may open. */
  nav: NavItem[];
  current: string;
  who: string;
  csrf: string;
}

export function consoleHeaders(res: Response, nonce: string): void {
  res.set({
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    // same-origin: the browser sends a real Origin with the console's own posts (checked with the CSRF token).
    'Referrer-Policy': 'same-origin',
  });
}

export function sendConsolePage(res: Response, frame: Frame, page: { title: string; body: Html; status?: number; chart?: boolean }): void {
  const nonce = randomBytes(16).toString('base64');
  const src = (name: string) => `${frame.home}/assets/${name}?v=${ASSETS.get(name)!.version}`;
  const nav = frame.nav.map((item) => html`<li><a href="${frame.home}${item.path}"${item.path === frame.current ? html` aria-current="page"` : ''}>${item.label}</a></li>`);
  const scripts = page.chart ? html`<script nonce="${nonce}" src="${src('chart.umd.min.js')}"></script><script nonce="${nonce}" src="${src('console.js')}"></script>` : '';
  consoleHeaders(res, nonce);
  res.status(page.status ?? 200).send(
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${page.title} · Keygate console</title><link rel="stylesheet" nonce="${nonce}" href="${src('console.css')}"></head><body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">Keygate console</span><nav aria-label="Console"><ul>${nav}</ul></nav>
<div class="who"><span>Signed in as <strong>${frame.who}</strong></span><form method="post" action="${frame.home}/sign-out"><input type="hidden" name="csrf" value="${frame.csrf}"><button type="submit" class="link">Sign out</button></form></div></header>
<main id="main" tabindex="-1"><h1>${page.title}</h1>${page.body}</main>${scripts}</body></html>`.value,
  );
}

/** A refusal (no capability, a form that cannot be used, a change the rules refuse), in the console's frame. */
export function sendRefusal(res: Response, frame: Frame, status: number, title: string, message: string): void {
  sendConsolePage(res, frame, { title, body: html`<p class="error" role="alert">${message}</p>`, status });
}
