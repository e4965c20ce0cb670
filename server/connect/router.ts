import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { Assignment, CatalogHolder } from '../catalog/catalog.ts';
import { mayUse } from '../catalog/catalog.ts';
import { sendErrorPage } from '../http/html.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { Accounts } from '../oauth/accounts.ts';
import type { BrowserSessions } from '../oauth/browser-session.ts';
import { WebSignIn } from '../oauth/web-sign-in.ts';
import { Collection, type Store } from '../store/index.ts';
import { kindFor, type Identities, type Secret } from '../vault/identities.ts';
import { fieldProblems, headerValueProblem } from '../vault/inject.ts';
import { selectionHolds, type Selections } from '../vault/selections.ts';
import { selectable, stateOf } from '../vault/server-state.ts';
import { oauthSecret, type UpstreamOAuth, UpstreamOAuthError } from '../vault/upstream-oauth.ts';
import { renderIndex, renderServer } from './pages.ts';

// /connect: the pages where a person connects their identities in a browser
// (for clients without the extension). They use the registry's own sign-in
// (single sign-on cookie); every form carries a CSRF token bound to that
// sign-in. Per-user OAuth: Keygate's own explanation first, then the
// upstream's authorization server (PKCE, state bound to the person), back to
// /connect/callback, and the token set is sealed in the vault.

export interface ConnectDeps {
  catalog: CatalogHolder;
  identities: Identities;
  selections: Selections;
  accounts: Accounts;
  sessions: BrowserSessions;
  upstreamOAuth: UpstreamOAuth;
  store: Store;
  publicUrl: string;
  /** HMAC key for CSRF tokens and the sign-in state cookie. */
  key: Buffer;
  secureCookies: boolean;
  log: Logger;
}

const AUTHORIZATION_LIFETIME = 600;
const authorizationSchema = z.object({
  sub: z.string(),
  gateway: z.string(),
  server: z.string(),
  upstream: z.string(),
  code_verifier: z.string(),
  availability: z.enum(['private', 'global']),
});

const now = () => Math.floor(Date.now() / 1000);

export function connectRouter(deps: ConnectDeps): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  const base = deps.publicUrl;
  const basePath = new URL(base).pathname.replace(/\/+$/, '');
  const authorizations = new Collection(deps.store, 'upstream_authorizations', authorizationSchema);
  const web = new WebSignIn({ sessions: deps.sessions, accounts: deps.accounts, publicUrl: base, key: deps.key, secureCookies: deps.secureCookies, mount: '/connect', stateCookie: 'kg_connect' });
  const person = (req: Request) => web.person(req);
  const csrfFor = (req: Request) => web.csrf(req);
  const checkCsrf = (req: Request) => web.checkCsrf(req);
  const signIn = (req: Request, res: Response) => web.start(req, res);

  router.get('/signed-in', (req, res) => web.finish(req, res));

  router.get('/callback', (req, res) => finishAuthorization(req, res));

  router.get('/', async (req, res) => {
    const who = await person(req);
    if (!who) return signIn(req, res);
    const catalog = deps.catalog.current;
    const all = await deps.identities.visibleTo(who.subject);
    const servers = [];
    for (const gateway of catalog.gateways.values()) {
      if (!mayUse(gateway, who)) continue;
      for (const a of gateway.servers.values()) servers.push(await stateOf(deps, a, gateway.name, gateway.disabled, who.subject, all));
    }
    res.set('Cache-Control', 'no-store');
    renderIndex(res, { username: who.name ?? who.email ?? who.subject, servers });
  });

  /** The assignment at :gateway/:server that this person may use, or an error page. */
  async function target(req: Request, res: Response): Promise<{ who: Principal; a: Assignment; gatewayName: string; gatewayDisabled: boolean } | undefined> {
    const who = await person(req);
    if (!who) {
      if (req.method === 'GET') signIn(req, res);
      else sendErrorPage(res, 401, 'Sign in first', 'Your sign-in has expired. Open the connect page again.');
      return undefined;
    }
    const gateway = deps.catalog.current.gateways.get(String(req.params.gateway));
    const a = gateway?.servers.get(String(req.params.server));
    if (!gateway || !a || !mayUse(gateway, who)) {
      sendErrorPage(res, 404, 'No such server', 'There is no such server on a gateway open to you.');
      return undefined;
    }
    if (a.identity !== 'per_user' || a.storage !== 'registry') {
      sendErrorPage(res, 400, 'Nothing to connect', `${a.upstream.name} on ${gateway.name} ${a.identity === 'shared' ? 'uses a shared service account' : 'takes its credentials from your Keygate client'}: there is nothing to connect here.`);
      return undefined;
    }
    return { who, a, gatewayName: gateway.name, gatewayDisabled: gateway.disabled };
  }

  async function show(req: Request, res: Response, t: NonNullable<Awaited<ReturnType<typeof target>>>, message: { notice?: string; error?: string; status?: number } = {}) {
    const all = await deps.identities.visibleTo(t.who.subject);
    const state = await stateOf(deps, t.a, t.gatewayName, t.gatewayDisabled, t.who.subject, all);
    const action = (step: string) => `${basePath}/connect/${t.a.gateway}/${t.a.name}/${step}`;
    res.set('Cache-Control', 'no-store');
    renderServer(res, { state, csrf: csrfFor(req), action, index: `${basePath}/connect`, ...message });
  }

  router.get('/:gateway/:server', async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    const done = req.query.done;
    await show(req, res, t, { notice: done === 'connected' ? `Connected. Calls to ${t.a.upstream.name} now run as you.` : done === 'saved' ? 'Saved.' : done === 'selected' ? 'Identity chosen.' : done === 'disconnected' ? 'Disconnected.' : undefined });
  });

  const back = (res: Response, a: Assignment, done: string) => res.redirect(303, `${basePath}/connect/${a.gateway}/${a.name}?done=${done}`);

  router.post('/:gateway/:server/credentials', form, async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    if (!checkCsrf(req)) return sendErrorPage(res, 403, 'This form cannot be used', 'The form is out of date or was not sent by this page. Open the connect page again.');
    const { credential } = t.a.upstream;
    const kind = kindFor(credential);
    const body = req.body as Record<string, string | undefined>;
    const label = typeof body.label === 'string' && body.label.trim() ? body.label.trim().slice(0, 100) : undefined;
    const availability = body.availability === 'global' ? 'global' : 'private';
    let secret: Secret;
    if (kind === 'fields' && credential.type === 'fields') {
      // Empty secret fields keep what the current own identity holds.
      const current = (await deps.identities.ownFor(t.who.subject, t.a.upstream.id)).find((i) => i.kind === 'fields');
      const kept = current ? deps.identities.reveal(current) : undefined;
      const values: Record<string, string> = {};
      for (const f of credential.fields) {
        const v = typeof body[`field_${f.name}`] === 'string' ? body[`field_${f.name}`]! : '';
        const previous = kept?.kind === 'fields' ? kept.values[f.name] : undefined;
        if (v !== '') values[f.name] = v;
        else if (previous !== undefined) values[f.name] = previous;
      }
      const problems = fieldProblems(credential, values);
      if (problems.length) return show(req, res, t, { error: problems.join('. '), status: 400 });
      secret = { kind: 'fields', values };
      const saved = await deps.identities.put({ id: current?.id, upstream: t.a.upstream.id, owner: t.who.subject, availability, label: label ?? current?.label, secret, created_by: t.who.subject }, credential);
      await deps.selections.set(t.who.subject, t.a.gateway, t.a.name, saved.id);
      return back(res, t.a, 'saved');
    }
    if (kind === 'bearer' || kind === 'header') {
      const value = typeof body.secret === 'string' ? body.secret : '';
      if (!value || headerValueProblem(value)) return show(req, res, t, { error: 'Enter the value (one line: no control characters, nothing beyond Latin-1).', status: 400 });
      secret = kind === 'bearer' ? { kind, token: value } : { kind, value };
      const saved = await deps.identities.put({ upstream: t.a.upstream.id, owner: t.who.subject, availability, label, secret, created_by: t.who.subject }, credential);
      await deps.selections.set(t.who.subject, t.a.gateway, t.a.name, saved.id);
      return back(res, t.a, 'saved');
    }
    return show(req, res, t, { error: 'This server signs in with OAuth: use the Continue button.', status: 400 });
  });

  router.post('/:gateway/:server/select', form, async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    if (!checkCsrf(req)) return sendErrorPage(res, 403, 'This form cannot be used', 'The form is out of date or was not sent by this page. Open the connect page again.');
    const chosen = String((req.body as { identity?: unknown }).identity ?? '');
    const allowed = selectable(await deps.identities.visibleTo(t.who.subject), t.who.subject, t.a.upstream.id).some((i) => i.id === chosen && !i.disabled);
    if (!allowed) return show(req, res, t, { error: 'That identity cannot be chosen here.', status: 403 });
    await deps.selections.set(t.who.subject, t.a.gateway, t.a.name, chosen);
    if (!(await selectionHolds(deps, t.who.subject, t.a, chosen))) return show(req, res, t, { error: 'That identity cannot be chosen here.', status: 403 });
    back(res, t.a, 'selected');
  });

  router.post('/:gateway/:server/disconnect', form, async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    if (!checkCsrf(req)) return sendErrorPage(res, 403, 'This form cannot be used', 'The form is out of date or was not sent by this page. Open the connect page again.');
    const state = await stateOf(deps, t.a, t.gatewayName, t.gatewayDisabled, t.who.subject, await deps.identities.visibleTo(t.who.subject));
    if (state.identity?.owner === 'you') await deps.identities.destroy(state.identity.id);
    await deps.selections.clear(t.who.subject, t.a.gateway, t.a.name);
    back(res, t.a, 'disconnected');
  });

  router.post('/:gateway/:server/authorize', form, async (req, res) => {
    const t = await target(req, res);
    if (!t) return;
    if (!checkCsrf(req)) return sendErrorPage(res, 403, 'This form cannot be used', 'The form is out of date or was not sent by this page. Open the connect page again.');
    if (t.a.upstream.credential.type !== 'oauth') return show(req, res, t, { error: 'This server does not sign in with OAuth.', status: 400 });
    const state = randomBytes(24).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    try {
      const url = await deps.upstreamOAuth.authorizationUrl(t.a.upstream, state, createHash('sha256').update(verifier).digest('base64url'));
      const availability = (req.body as { availability?: unknown }).availability === 'global' ? 'global' : 'private';
      await authorizations.upsert(state, { sub: t.who.subject, gateway: t.a.gateway, server: t.a.name, upstream: t.a.upstream.id, code_verifier: verifier, availability }, now() + AUTHORIZATION_LIFETIME);
      res.redirect(303, url.toString());
    } catch (err) {
      deps.log.warn('cannot start OAuth for upstream %s: %s', t.a.upstream.id, (err as Error).message);
      return show(req, res, t, { error: `${t.a.upstream.name}'s sign-in cannot be reached: ${err instanceof UpstreamOAuthError ? err.message : 'try again later'}.`, status: 502 });
    }
  });

  async function finishAuthorization(req: Request, res: Response): Promise<void> {
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const pending = state ? await authorizations.consume(state) : undefined;
    if (!pending) return sendErrorPage(res, 400, 'This connection cannot be completed', 'It was not started here, was already used, or expired. Start again from the connect page.');
    const who = await person(req);
    // The state belongs to the person who started it, in this browser's sign-in.
    if (!who || who.subject !== pending.sub) return sendErrorPage(res, 403, 'This connection belongs to someone else', 'Sign in as the person who started it, then start again.');
    const upstream = deps.catalog.current.upstreams.get(pending.upstream);
    if (!upstream) return sendErrorPage(res, 400, 'This server is gone', 'The upstream was removed while you were signing in.');
    if (typeof req.query.error === 'string') {
      return sendErrorPage(res, 400, `${upstream.name} did not connect`, `${upstream.name} answered: ${String(req.query.error_description ?? req.query.error)}`);
    }
    let tokens;
    try {
      tokens = await deps.upstreamOAuth.exchange(upstream, new URL(req.originalUrl, base).searchParams, state, pending.code_verifier);
    } catch (err) {
      deps.log.warn('OAuth at upstream %s failed for %s: %s', upstream.id, who.subject, (err as Error).message);
      return sendErrorPage(res, 502, `${upstream.name} did not connect`, 'Its answer could not be used. Start again from the connect page.');
    }
    const existing = (await deps.identities.ownFor(who.subject, upstream.id)).find((i) => i.kind === 'oauth');
    const saved = await deps.identities.put(
      { id: existing?.id, upstream: upstream.id, owner: who.subject, availability: pending.availability, label: existing?.label, secret: oauthSecret(tokens), created_by: who.subject },
      upstream.credential,
    );
    await deps.selections.set(who.subject, pending.gateway, pending.server, saved.id);
    deps.log.info('%s connected an OAuth identity for upstream %s', who.subject, upstream.id);
    res.redirect(303, `${basePath}/connect/${pending.gateway}/${pending.server}?done=connected`);
  }

  return router;
}
