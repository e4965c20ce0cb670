import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { type AdminTarget, type AuditEntry, type AuditLog, isAuditLog } from '../audit/audit.ts';
import { listClients, newClientSecret, switchClient } from '../api/admin/clients.ts';
import { auditedChange } from '../api/admin/changes.ts';
import { listConnections, switchConnection } from '../api/admin/connections.ts';
import { type AdminDeps, switchView } from '../api/admin/deps.ts';
import { listGateways, switchGateway } from '../api/admin/gateways.ts';
import { listIdentities, switchIdentity } from '../api/admin/identities.ts';
import { ROUTE_CAPABILITIES } from '../api/admin/index.ts';
import { listUpstreams, switchUpstream } from '../api/admin/upstreams.ts';
import { listUsers, setUserDisabled } from '../api/admin/users.ts';
import { sendJsonl } from '../api/audit.ts';
import type { Capabilities } from '../api/capabilities.ts';
import { describeIssue } from '../api/http.ts';
import type { Capability } from '../config/sections/access.ts';
import { KeygateError } from '../http/errors.ts';
import { type Html, html, sendErrorPage, sendPage } from '../http/html.ts';
import type { Principal } from '../inbound/principal.ts';
import type { Logger } from '../log.ts';
import type { Accounts } from '../oauth/accounts.ts';
import type { BrowserSessions } from '../oauth/browser-session.ts';
import { WebSignIn } from '../oauth/web-sign-in.ts';
import { changeFilter, changeQuery, changesPage, chartOf, newest, requestFilter, requestQuery, requestsPage, ROWS } from './audit-view.ts';
import { ASSETS, type Frame, sendConsolePage, sendRefusal } from './layout.ts';
import { clientsPage, connectionsPage, gatewaysPage, identitiesPage, type PageContext, type SwitchGroup, upstreamsPage, usersPage, when } from './pages.ts';

// /admin: the web console, a backend for the browser. The person signs in
// through the registry's own browser sign-in (single sign-on; federated mode
// the same) and never holds an access token: the console calls the admin
// API's own functions as that person, as their token with mcp:admin would
// make them (their account's scopes, groups and roles), and each change is
// recorded in the audit log as the API records its own (via "console").
// Each page and each change needs the capability the API's route group needs
// (access.roles; by default the scope mcp:admin holds them all). Forms post
// here with a CSRF token bound to the sign-in, and answer with a redirect.

export interface ConsoleDeps {
  admin: AdminDeps;
  capabilities: Capabilities;
  sessions: BrowserSessions;
  accounts: Accounts;
  publicUrl: string;
  /** HMAC key for CSRF tokens and the sign-in state cookie. */
  key: Buffer;
  secureCookies: boolean;
  log: Logger;
}

interface Page {
  path: string;
  label: string;
  needs?: Capability;
}

const PAGES: Page[] = [
  { path: '', label: 'Overview' },
  { path: '/gateways', label: 'Gateways', needs: ROUTE_CAPABILITIES.gateways },
  { path: '/upstreams', label: 'Upstreams', needs: ROUTE_CAPABILITIES.upstreams },
  { path: '/identities', label: 'Identities', needs: ROUTE_CAPABILITIES.identities },
  { path: '/users', label: 'Users', needs: ROUTE_CAPABILITIES.users },
  { path: '/clients', label: 'OAuth clients', needs: ROUTE_CAPABILITIES.clients },
  { path: '/connections', label: 'Connections', needs: ROUTE_CAPABILITIES.connections },
  { path: '/audit', label: 'Audit', needs: 'audit_log' },
  { path: '/changes', label: 'Admin changes', needs: 'audit_log' },
];

const TARGETS: Record<SwitchGroup, AdminTarget['type']> = { gateways: 'gateway', upstreams: 'upstream', identities: 'identity', users: 'user', clients: 'client', connections: 'connection' };
const isGroup = (g: string): g is SwitchGroup => Object.hasOwn(TARGETS, g);

const switchBody = z.strictObject({
  csrf: z.string(),
  id: z.string().min(1).max(4096),
  action: z.enum(['disable', 'enable']),
  reason: z.string().trim().min(1, 'give a reason').max(500, 'a reason is at most 500 characters'),
});
const secretBody = z.strictObject({ csrf: z.string(), id: z.string().min(1).max(4096) });

interface Session {
  who: Principal;
  held: Capability[];
  frame: Frame;
}

export function consoleRouter(deps: ConsoleDeps): Router {
  const router = Router();
  const { admin, capabilities } = deps;
  const home = `${new URL(deps.publicUrl).pathname.replace(/\/+$/, '')}/admin`;
  const web = new WebSignIn({ sessions: deps.sessions, accounts: deps.accounts, publicUrl: deps.publicUrl, key: deps.key, secureCookies: deps.secureCookies, mount: '/admin', stateCookie: 'kg_console' });
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const log = (): AuditLog | undefined => (isAuditLog(admin.audit) ? admin.audit : undefined);

  router.get('/assets/:name', (req, res) => {
    const asset = ASSETS.get(req.params.name);
    if (!asset) return void res.status(404).set('Content-Type', 'text/plain').send('not found');
    res.set({ 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=86400, immutable', 'X-Content-Type-Options': 'nosniff', 'Cross-Origin-Resource-Policy': 'same-origin' }).send(asset.body);
  });

  router.get('/signed-in', (req, res) => web.finish(req, res));

  // Everything else: the signed-in person and what they may do.
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    const who = await web.person(req);
    // As the API: a deactivated account (person() has none) or a disabled client opens nothing.
    if (!who || admin.breakGlass.clientDisabled(who)) {
      if (req.method === 'GET' && who === undefined) return web.start(req, res);
      return sendErrorPage(res, who ? 403 : 401, who ? 'The console is switched off' : 'Sign in first', who ? "The registry's web client is disabled by an admin." : 'Your sign-in has expired. Open the console again.');
    }
    const held = capabilities.of(who);
    const current = PAGES.find((p) => req.path === (p.path || '/'))?.path ?? '';
    const frame: Frame = { home, nav: held.length ? PAGES.filter((p) => !p.needs || held.includes(p.needs)) : [], current, who: who.name ?? who.email ?? who.subject, csrf: web.csrf(req) };
    res.locals.console = { who, held, frame } satisfies Session;
    if (!held.length) {
      const rule = capabilities.configured ? 'none of the roles of access.roles names you' : 'your account does not hold the scope mcp:admin';
      return sendRefusal(res, frame, 403, 'Not an admin here', `You are signed in, but ${rule}, so there is nothing here for you.`);
    }
    next();
  });

  const session = (res: Response) => res.locals.console as Session;

  /** Forms: the CSRF token first (no record: the post may not be the person's), then the capability (a refusal is recorded, as the API does). */
  async function allowed(req: Request, res: Response, needs: Capability, attempt: { type: AdminTarget['type']; action: string; id: string | undefined }): Promise<boolean> {
    const s = session(res);
    if (!web.checkCsrf(req)) {
      sendRefusal(res, s.frame, 403, 'This form cannot be used', 'The form is out of date or was not sent by this console. Open the page again.');
      return false;
    }
    if (s.held.includes(needs)) return true;
    const refusal = capabilities.refusal(needs, s.held);
    await auditedChange(admin, { principal: s.who, via: 'console', ...attempt }, () => Promise.reject(refusal)).catch(() => undefined);
    sendRefusal(res, s.frame, 403, 'Not allowed', `This needs the capability ${needs}, which you do not hold.`);
    return false;
  }

  function guard(needs: Capability | undefined) {
    return (_req: Request, res: Response, next: NextFunction) => {
      const s = session(res);
      if (needs && !s.held.includes(needs)) return sendRefusal(res, s.frame, 403, 'Not allowed', `This page needs the capability ${needs}, which you do not hold.`);
      next();
    };
  }

  /** Who flipped each switch, when and why (the lists of gateways, upstreams and identities show only the state). */
  async function withSwitches<T extends object>(type: AdminTarget['type'], items: T[], id: (item: T) => string): Promise<(T & { switch?: ReturnType<typeof switchView> })[]> {
    const switches = new Map(await admin.catalog.switches.all());
    return items.map((item) => ({ ...item, switch: switchView(switches.get(`${type}:${id(item)}`)) }));
  }

  const VIEWS: Record<SwitchGroup, (ctx: PageContext, who: Principal) => Promise<Html>> = {
    gateways: async (ctx) => gatewaysPage(ctx, await withSwitches('gateway', await listGateways(admin), (g) => g.id)),
    upstreams: async (ctx) => upstreamsPage(ctx, await withSwitches('upstream', await listUpstreams(admin), (u) => u.id)),
    identities: async (ctx) => identitiesPage(ctx, await withSwitches('identity', await listIdentities(admin), (i) => i.id)),
    users: async (ctx, who) => usersPage(ctx, await listUsers(admin), who.subject),
    clients: async (ctx) => clientsPage(ctx, await listClients(admin)),
    connections: async (ctx) => connectionsPage(ctx, await listConnections(admin)),
  };

  /** The change each switch makes, through the admin API's own functions. */
  const SWITCHES: Record<SwitchGroup, (who: Principal, id: string, disabled: boolean, reason: string) => Promise<unknown>> = {
    gateways: (who, id, disabled, reason) => switchGateway(admin, id, disabled, who.subject, reason),
    upstreams: (who, id, disabled, reason) => switchUpstream(admin, id, disabled, who.subject, reason),
    identities: (who, id, disabled, reason) => switchIdentity(admin, id, disabled, who.subject, reason),
    users: (who, id, disabled, reason) => setUserDisabled(admin, who, id, disabled, reason),
    clients: (who, id, disabled, reason) => switchClient(admin, who, id, disabled, reason),
    connections: (who, id, disabled, reason) => switchConnection(admin, id, disabled, who.subject, reason),
  };

  const DONE: Record<string, string> = { disable: 'Disabled: in effect from the next request.', enable: 'Enabled again.', deactivate: 'Deactivated: their grants and browser sessions have ended.', reactivate: 'Reactivated: they can sign in again.' };

  async function show(res: Response, group: SwitchGroup, message: { notice?: string | undefined; error?: string; status?: number; secret?: { client_id: string; value: string } } = {}) {
    const s = session(res);
    const ctx = { home, csrf: s.frame.csrf };
    const body = group === 'clients' && message.secret ? clientsPage(ctx, await listClients(admin), message.secret) : await VIEWS[group](ctx, s.who);
    const banner = message.error ? html`<p class="error" role="alert">${message.error}</p>` : message.notice ? html`<p class="notice" role="status">${message.notice}</p>` : '';
    sendConsolePage(res, { ...s.frame, current: `/${group}` }, { title: PAGES.find((p) => p.path === `/${group}`)!.label, body: html`${banner}${body}`, status: message.status });
  }

  router.get('/', async (_req, res) => {
    const s = session(res);
    const may = (c: Capability) => s.held.includes(c);
    const counts: { label: string; value: number; href: string }[] = [];
    if (may(ROUTE_CAPABILITIES.gateways!)) {
      const gateways = await listGateways(admin);
      counts.push({ label: 'gateways', value: gateways.length, href: '/gateways' }, { label: 'servers on them', value: gateways.reduce((n, g) => n + g.servers.length, 0), href: '/gateways' });
    }
    if (may(ROUTE_CAPABILITIES.upstreams!)) counts.push({ label: 'upstreams', value: (await listUpstreams(admin)).length, href: '/upstreams' });
    if (may(ROUTE_CAPABILITIES.identities!)) counts.push({ label: 'identities', value: (await listIdentities(admin)).length, href: '/identities' }, { label: 'connections', value: (await listConnections(admin)).length, href: '/connections' });
    if (may(ROUTE_CAPABILITIES.users!)) counts.push({ label: 'users', value: (await listUsers(admin)).length, href: '/users' });
    if (may(ROUTE_CAPABILITIES.clients!)) counts.push({ label: 'OAuth clients', value: (await listClients(admin)).length, href: '/clients' });
    const audit = log();
    const refusals = may('audit_log') && audit ? await newest<AuditEntry>(audit, { kind: 'mcp', outcome: 'error' }, 10) : undefined;
    // What is switched off right now, of the kinds this person administers.
    const off = (await admin.catalog.switches.all()).filter(([id, sw]) => {
      const group = Object.entries(TARGETS).find(([, type]) => id.startsWith(`${type}:`))?.[0];
      return sw.disabled && sw.by !== undefined && group !== undefined && isGroup(group) && may(ROUTE_CAPABILITIES[group]!);
    });
    const w = s.who;
    const body = html`<ul class="counts">${counts.map((c) => html`<li><strong>${c.value}</strong><a href="${home}${c.href}">${c.label}</a></li>`)}</ul>
<section class="card" aria-labelledby="you"><h2 id="you">You</h2><dl class="facts"><dt>Subject</dt><dd><code>${w.subject}</code></dd><dt>Email</dt><dd>${w.email ?? '—'}</dd><dt>Groups</dt><dd>${w.groups.join(', ') || '—'}</dd><dt>Roles (token)</dt><dd>${w.roles?.join(', ') || '—'}</dd><dt>Access roles</dt><dd>${capabilities.configured ? capabilities.rolesOf(w).join(', ') : 'none configured: the scope mcp:admin holds every capability'}</dd><dt>Capabilities</dt><dd>${s.held.join(', ')}</dd></dl></section>
<section class="card" aria-labelledby="off"><h2 id="off">Switched off now</h2>${off.length ? html`<ul>${off.map(([id, sw]) => html`<li><code>${id.split('\n').join(' · ')}</code> by ${sw.by ?? '?'}, ${when(sw.at)}${sw.reason ? `: “${sw.reason}”` : ''}</li>`)}</ul>` : html`<p class="muted">Nothing.</p>`}</section>
${
  refusals
    ? html`<section class="card" aria-labelledby="refusals"><h2 id="refusals">Recent refusals</h2>${refusals.length ? html`<ul>${refusals.map((e) => html`<li>${e.time.slice(0, 19).replace('T', ' ')} <strong>${e.subject ?? 'anonymous'}</strong> → ${e.gateway}${e.server ? `/${e.server}` : ''} ${e.name ?? e.method ?? ''}: <span class="badge bad">${e.outcome}</span></li>`)}</ul><p><a href="${home}/audit?outcome=error">All refusals</a></p>` : html`<p class="muted">None recorded.</p>`}</section>`
    : ''
}`;
    sendConsolePage(res, s.frame, { title: 'Overview', body });
  });

  for (const group of Object.keys(TARGETS) as SwitchGroup[]) {
    router.get(`/${group}`, guard(ROUTE_CAPABILITIES[group]), async (req, res) => {
      const done = typeof req.query.done === 'string' ? DONE[req.query.done] : undefined;
      await show(res, group, { notice: done });
    });
  }

  router.post('/clients/secret', form, async (req, res) => {
    const s = session(res);
    const id = typeof req.body?.id === 'string' ? (req.body.id as string) : undefined;
    if (!(await allowed(req, res, ROUTE_CAPABILITIES.clients!, { type: 'client', action: 'rotate_secret', id }))) return;
    const body = secretBody.safeParse(req.body);
    if (!body.success) return show(res, 'clients', { error: describeIssue(body.error.issues[0]!), status: 400 });
    try {
      const made = await auditedChange(admin, { principal: s.who, via: 'console', type: 'client', action: 'rotate_secret', id: body.data.id }, () => newClientSecret(admin, s.who, body.data.id));
      // Shown on this answer only (no-store), never after a redirect.
      await show(res, 'clients', { secret: { client_id: made.client_id, value: made.client_secret } });
    } catch (err) {
      if (!(err instanceof KeygateError)) throw err;
      await show(res, 'clients', { error: err.message, status: err.status });
    }
  });

  router.post('/:group/switch', form, async (req, res) => {
    const group = req.params.group as string;
    if (!isGroup(group)) return sendRefusal(res, session(res).frame, 404, 'Not found', 'There is no such page.');
    const s = session(res);
    const type = TARGETS[group];
    const disabled = req.body?.action !== 'enable';
    // People are deactivated and reactivated (the API's words, in the audit too); everything else is disabled and enabled.
    const action = type === 'user' ? (disabled ? 'deactivate' : 'reactivate') : disabled ? 'disable' : 'enable';
    const id = typeof req.body?.id === 'string' ? (req.body.id as string) : undefined;
    if (!(await allowed(req, res, ROUTE_CAPABILITIES[group]!, { type, action, id }))) return;
    const body = switchBody.safeParse(req.body);
    if (!body.success) return show(res, group, { error: describeIssue(body.error.issues[0]!), status: 400 });
    const { reason } = body.data;
    try {
      await auditedChange(admin, { principal: s.who, via: 'console', type, action, id: body.data.id, reason }, () => SWITCHES[group](s.who, body.data.id, disabled, reason));
    } catch (err) {
      if (!(err instanceof KeygateError)) throw err;
      return show(res, group, { error: err.message, status: err.status });
    }
    res.redirect(303, `${home}/${group}?done=${action}`);
  });

  /** The audit log and the parsed filter, or a refusal page (404: the sink cannot be read; 400: the filter names its problem). */
  function auditView<S extends z.ZodType>(res: Response, schema: S, query: unknown, title: string): { audit: AuditLog; q: z.infer<S> } | undefined {
    const audit = log();
    const q = schema.safeParse(query);
    if (audit && q.success) return { audit, q: q.data };
    sendRefusal(res, session(res).frame, audit ? 400 : 404, title, audit ? `This filter cannot be used: ${describeIssue(q.error!.issues[0]!)}` : 'This registry records its audit to a sink that cannot be queried.');
    return undefined;
  }

  router.get('/audit', guard('audit_log'), async (req, res) => {
    const s = session(res);
    const view = auditView(res, requestQuery, req.query, 'Audit');
    if (!view) return;
    const { audit, q } = view;
    const filter = requestFilter(q);
    const query = new URLSearchParams(Object.entries(req.query).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '')).toString();
    const body = requestsPage(home, q, query, await newest<AuditEntry>(audit, filter, ROWS), await chartOf(audit, filter));
    sendConsolePage(res, s.frame, { title: 'Audit', body, chart: true });
  });

  router.get('/audit/export', guard('audit_log'), async (req, res) => {
    const view = auditView(res, requestQuery, req.query, 'Audit');
    if (view) await sendJsonl(res, view.audit, requestFilter(view.q));
  });

  router.get('/changes', guard('audit_log'), async (req, res) => {
    const view = auditView(res, changeQuery, req.query, 'Admin changes');
    if (view) sendConsolePage(res, session(res).frame, { title: 'Admin changes', body: changesPage(home, view.q, await newest(view.audit, changeFilter(view.q), ROWS)) });
  });

  router.post('/sign-out', form, async (req, res) => {
    const s = session(res);
    if (!web.checkCsrf(req)) return sendRefusal(res, s.frame, 403, 'This form cannot be used', 'The form is out of date or was not sent by this console. Open the page again.');
    await deps.sessions.end(req, res);
    sendPage(res, 200, 'Signed out', html`<h1>Signed out</h1><p>You are signed out of the registry in this browser.</p><p><a href="${home}">Sign in again</a></p>`);
  });

  router.use((req, res) => sendRefusal(res, session(res).frame, 404, 'Not found', 'There is no such page in the console.'));

  // Anything unexpected: a page, never the cause (it is logged).
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // A form the body parser refuses (too large, too many fields, a bad encoding) is the sender's fault: 413 or 400.
    const { type, status } = (err ?? {}) as { type?: unknown; status?: unknown };
    if (typeof type === 'string' && typeof status === 'number' && status >= 400 && status < 500 && !res.headersSent) {
      if (status !== 413) return sendErrorPage(res, 400, 'The form could not be read', 'It is not a form of this console. Nothing was changed.');
      return sendErrorPage(res, 413, type === 'parameters.too.many' ? 'The form has too many fields' : 'The form is too large', 'A console form carries a few short fields. Nothing was changed.');
    }
    deps.log.error('console: %s %s failed: %s', req.method, req.path, err instanceof Error ? (err.stack ?? err.message) : String(err));
    if (res.headersSent) return void res.destroy();
    sendErrorPage(res, 500, 'Something went wrong', 'The console could not answer. Try again; if it persists, the registry log says why.');
  });

  return router;
}
