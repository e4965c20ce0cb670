import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { sendErrorPage } from '../http/html.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Accounts } from './accounts.ts';
import type { BrowserSessions } from './browser-session.ts';
import { WEB_CLIENT_ID } from './clients.ts';
import { readCookie, setCookie } from './interaction.ts';

// The registry's own pages (/connect, /admin) sign people in as its
// first-party web client: a person without the single sign-on cookie goes
// through /oauth/authorize (the login page, or the federated IdP) and comes
// back to {mount}/signed-in, then to the page they asked for. Every form on
// those pages carries a CSRF token bound to the sign-in (an HMAC of the
// cookie's hash), and a cross-site post is refused by its Origin too.

export interface WebSignInDeps {
  sessions: BrowserSessions;
  accounts: Accounts;
  publicUrl: string;
  /** HMAC key for CSRF tokens and the sign-in state cookie. */
  key: Buffer;
  secureCookies: boolean;
  /** Where the pages live, below the public URL: `/connect`, `/admin`. */
  mount: string;
  /** The cookie that carries the sign-in's state while the person is away. */
  stateCookie: string;
}

const sha256 = (v: string) => createHash('sha256').update(v).digest('base64url');

export class WebSignIn {
  private readonly basePath: string;
  private readonly origin: string;

  constructor(private readonly deps: WebSignInDeps) {
    this.basePath = new URL(deps.publicUrl).pathname.replace(/\/+$/, '');
    this.origin = new URL(deps.publicUrl).origin;
  }

  /** The redirect URI of these pages (registered on the web client). */
  get redirectUri(): string {
    return `${this.deps.publicUrl}${this.deps.mount}/signed-in`;
  }

  private mac(value: string): string {
    return createHmac('sha256', this.deps.key).update(value).digest('base64url');
  }

  /** The signed-in person, from the single sign-on cookie, as their tokens would name them (undefined: nobody, or a deactivated account). */
  async person(req: Request): Promise<Principal | undefined> {
    const session = await this.deps.sessions.current(req);
    const account = session && (await this.deps.accounts.find(session.sub));
    if (!account || account.disabled) return undefined;
    return { subject: account.sub, name: account.name, email: account.email, scopes: account.scopes, groups: account.groups, roles: account.roles, provider: 'registry', clientId: WEB_CLIENT_ID };
  }

  csrf(req: Request): string {
    return this.mac(`csrf\n${sha256(readCookie(req, 'kg_sso') ?? '')}`);
  }

  checkCsrf(req: Request): boolean {
    const expected = Buffer.from(this.csrf(req));
    const actual = Buffer.from(typeof req.body?.csrf === 'string' ? (req.body.csrf as string) : '');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return false;
    // A cross-site form post says where it comes from.
    const origin = req.headers.origin;
    return origin === undefined || origin === this.origin;
  }

  /** Not signed in: through the registry's sign-in (as its first-party web client), then back to the page asked for. */
  start(req: Request, res: Response): void {
    const { publicUrl, mount } = this.deps;
    const state = randomBytes(16).toString('base64url');
    const next = `${this.basePath}${req.originalUrl.startsWith(this.basePath) ? req.originalUrl.slice(this.basePath.length) : req.originalUrl}`;
    const payload = Buffer.from(JSON.stringify({ state, next })).toString('base64url');
    setCookie(res, this.deps.stateCookie, `${payload}.${this.mac(payload)}`, { secure: this.deps.secureCookies, path: `${this.basePath}${mount}`, maxAge: 600 });
    const challenge = createHash('sha256').update(randomBytes(32)).digest('base64url');
    const url = new URL(`${publicUrl}/oauth/authorize`);
    url.search = new URLSearchParams({ response_type: 'code', client_id: WEB_CLIENT_ID, redirect_uri: this.redirectUri, state, code_challenge: challenge, code_challenge_method: 'S256' }).toString();
    res.redirect(303, url.toString());
  }

  /** GET {mount}/signed-in: the sign-in came back (the single sign-on cookie is set); on to the page asked for. */
  finish(req: Request, res: Response): void {
    const { mount } = this.deps;
    const cookie = readCookie(req, this.deps.stateCookie) ?? '';
    const [payload = '', signature = ''] = cookie.split('.');
    let saved: { state?: string; next?: string } = {};
    const expected = Buffer.from(this.mac(payload));
    if (payload && signature && Buffer.from(signature).length === expected.length && timingSafeEqual(Buffer.from(signature), expected)) {
      saved = JSON.parse(Buffer.from(payload, 'base64url').toString()) as typeof saved;
    }
    if (!saved.state || saved.state !== req.query.state || typeof req.query.error === 'string') {
      return sendErrorPage(res, 400, 'Sign-in did not complete', typeof req.query.error === 'string' ? String(req.query.error_description ?? req.query.error) : 'This sign-in was not started here, or it expired. Open the page again.');
    }
    setCookie(res, this.deps.stateCookie, '', { secure: this.deps.secureCookies, path: `${this.basePath}${mount}`, maxAge: 0 });
    // Only a path of these pages: never an open redirect.
    const home = `${this.basePath}${mount}`;
    const next = saved.next && (saved.next === home || saved.next.startsWith(`${home}/`) || saved.next.startsWith(`${home}?`)) ? saved.next : home;
    res.redirect(303, next);
  }
}
