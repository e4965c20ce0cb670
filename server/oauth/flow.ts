import type { Request, Response } from 'express';
import { z } from 'zod';
import { AccessDeniedError, ConsentRequiredError, InvalidRequestError, InvalidTargetError, type KeygateError, LoginRequiredError } from '../http/errors.ts';
import { clientAddress } from '../http/client-address.ts';
import { sendErrorPage } from '../http/html.ts';
import type { Logger } from '../log.ts';
import type { Account, Accounts } from './accounts.ts';
import type { RedirectableError } from './authorize.ts';
import type { BrowserSessions } from './browser-session.ts';
import type { Client, ClientRegistry } from './clients.ts';
import type { Consents } from './consents.ts';
import { epoch, type Grants } from './grants.ts';
import type { Interaction, Interactions } from './interaction.ts';
import { renderConsent, renderLogin } from './pages.ts';
import type { ResourceSpace } from './resource.ts';
import { grantScope, parseScope, withoutUnaskedAdmin } from './scope.ts';
import { addressKey, type LoginThrottle } from './throttle.ts';
import type { BuiltinUsers } from './users.ts';
import { CLI_CLIENT_ID } from './builtin-clients.ts';

/** How a person proves who they are when they are not signed in yet. */
export interface SignInMethod {
  /** Show the login form, or send the browser to the identity provider. */
  start(req: Request, res: Response, interaction: Interaction, client: Client): Promise<void>;
}

export interface FlowDeps {
  clients: ClientRegistry;
  accounts: Accounts;
  users: BuiltinUsers;
  grants: Grants;
  resources: ResourceSpace;
  interactions: Interactions;
  sessions: BrowserSessions;
  consents: Consents;
  throttle: LoginThrottle;
  issuer: string;
  /** The public path of /oauth, e.g. "/oauth" (or "/keygate/oauth" behind a prefix). */
  oauthPath: string;
  scopesSupported: string[];
  log: Logger;
}

const loginForm = z.object({ csrf: z.string().max(100), username: z.string().max(256), password: z.string().max(1024) });
const consentForm = z.object({ csrf: z.string().max(100), action: z.enum(['approve', 'deny']) });

/**
 * The steps after a valid authorization request: sign in (unless the browser
 * already is), consent (unless this client already has it), then the code.
 * Each step is its own page; every form carries the interaction's CSRF token
 * and is refused from another browser.
 */
export class AuthorizationFlow {
  /** Replaced by the federated sign-in when oauth_server.mode is federated. */
  signIn: SignInMethod;

  constructor(readonly deps: FlowDeps) {
    this.signIn = {
      start: async (_req, res, interaction, client) => renderLogin(res, { action: this.action(interaction, 'login'), interaction, client }),
    };
  }

  action(interaction: Interaction, step: 'login' | 'consent'): string {
    return `${this.deps.oauthPath}/interaction/${interaction.id}/${step}`;
  }

  errorRedirect(target: Pick<RedirectableError, 'error' | 'redirectUri' | 'state'>): string {
    const url = new URL(target.redirectUri);
    url.searchParams.set('error', target.error.code);
    url.searchParams.set('error_description', target.error.message);
    if (target.state !== undefined) url.searchParams.set('state', target.state);
    url.searchParams.set('iss', this.deps.issuer); // RFC 9207
    return url.toString();
  }

  async load(id: string): Promise<{ interaction: Interaction; client: Client } | undefined> {
    const interaction = await this.deps.interactions.find(id);
    const client = interaction && (await this.deps.clients.find(interaction.client_id));
    return interaction && client ? { interaction, client } : undefined;
  }

  /** A new interaction: a browser that is already signed in skips the login form (unless prompt=login). */
  async begin(req: Request, res: Response, interaction: Interaction, client: Client): Promise<void> {
    if (!interaction.prompt.includes('login')) {
      const session = await this.deps.sessions.current(req);
      if (session) interaction = (await this.deps.interactions.update(interaction.id, { user: session }))!;
    }
    await this.next(req, res, interaction, client);
  }

  /** Whatever the interaction needs now. */
  async next(req: Request, res: Response, interaction: Interaction, client: Client): Promise<void> {
    if (!interaction.user) {
      if (interaction.prompt.includes('none')) return this.fail(res, interaction, new LoginRequiredError('the user is not signed in (prompt=none)'));
      return this.signIn.start(req, res, interaction, client);
    }
    const account = await this.deps.accounts.find(interaction.user.sub);
    if (!account || account.disabled) return this.fail(res, interaction, new AccessDeniedError('this account may not sign in'));
    try {
      this.deps.resources.validate(interaction.resource);
    } catch (err) {
      if (err instanceof InvalidTargetError) return this.fail(res, interaction, err);
      throw err;
    }
    const scopes = this.scopesFor(interaction, account, client);
    if (await this.needsConsent(interaction, client, account, scopes)) {
      if (interaction.prompt.includes('none')) return this.fail(res, interaction, new ConsentRequiredError('this client needs the user\'s consent (prompt=none)'));
      return renderConsent(res, { action: this.action(interaction, 'consent'), interaction, client, username: account.name ?? account.username, scopes, resources: interaction.resource });
    }
    await this.finish(res, interaction, client, account, scopes);
  }

  /** What the user holds of what was asked (all they hold when nothing was, but mcp:admin), within the client's own scope. */
  private scopesFor(interaction: Interaction, account: Account, client: Client): string[] {
    const held = parseScope(grantScope(interaction.scope, this.deps.scopesSupported, account.scopes));
    const granted = withoutUnaskedAdmin(held, interaction.scope, interaction.resource, this.deps.resources.base);
    if (client.scope === undefined) return granted;
    const allowed = new Set([...parseScope(client.scope), 'offline_access']);
    return granted.filter((s) => allowed.has(s));
  }

  private async needsConsent(interaction: Interaction, client: Client, account: Account, scopes: string[]): Promise<boolean> {
    if (interaction.prompt.includes('consent')) return true;
    // The extension is first-party: the editor asks the person itself. Not the CLI: its loopback
    // redirect can be taken by any program on the machine (RFC 8252 §8.6), so the person approves it.
    if (client.source === 'builtin' && client.client_id !== CLI_CLIENT_ID) return false;
    return !(await this.deps.consents.covers(account.sub, client.client_id, scopes, interaction.resource));
  }

  /** The person signed in (form, or federated callback): remember it and go on. */
  async signedIn(req: Request, res: Response, interaction: Interaction, client: Client, account: Account): Promise<void> {
    const authTime = epoch();
    const updated = await this.deps.interactions.update(interaction.id, { user: { sub: account.sub, auth_time: authTime }, federated: undefined });
    if (!updated) return sendErrorPage(res, 400, 'This sign-in has expired', 'Start again from your application.');
    // Single sign-on only for the browser that started this sign-in (never from a cross-site post).
    if (this.deps.interactions.sameBrowser(req, updated)) await this.deps.sessions.start(res, account.sub, authTime);
    this.deps.log.info('signed in %s for client %s', account.sub, client.client_id);
    await this.next(req, res, updated, client);
  }

  async login(req: Request, res: Response, id: string): Promise<void> {
    const found = await this.load(id);
    if (!found) return sendErrorPage(res, 400, 'This sign-in has expired', 'Start again from your application.');
    const { interaction, client } = found;
    const form = loginForm.safeParse(req.body);
    const check = this.deps.interactions.checkForm(req, interaction, (req.body as { csrf?: unknown } | undefined)?.csrf);
    if (check !== 'ok') return this.refuseForm(res, check);
    if (!form.success) return renderLogin(res, { action: this.action(interaction, 'login'), interaction, client, status: 400, error: 'Enter a username and a password.' });
    const { username, password } = form.data;
    const address = addressKey(clientAddress(req));
    const wait = await this.deps.throttle.retryAfter(username, address);
    if (wait > 0) {
      const minutes = Math.ceil(wait / 60);
      return renderLogin(res, { action: this.action(interaction, 'login'), interaction, client, status: 429, username, retryAfter: wait, error: `Too many failed sign-ins. Try again in ${minutes} minute${minutes > 1 ? 's' : ''}.` });
    }
    const user = await this.deps.users.verify(username, password);
    if (!user) {
      await this.deps.throttle.fail(username, address);
      // One message and one status for an unknown user and a wrong password: no enumeration.
      this.deps.log.info('sign-in failed for client %s', client.client_id);
      return renderLogin(res, { action: this.action(interaction, 'login'), interaction, client, status: 401, username, error: 'Wrong username or password.' });
    }
    await this.deps.throttle.succeed(username, address);
    const account = await this.deps.accounts.remember({ sub: user.username, username: user.username, name: user.name, email: user.email, scopes: user.scopes, groups: [], provider: 'builtin' });
    if (account.disabled) return this.fail(res, interaction, new AccessDeniedError('this account may not sign in'));
    await this.signedIn(req, res, interaction, client, account);
  }

  async consent(req: Request, res: Response, id: string): Promise<void> {
    const found = await this.load(id);
    if (!found) return sendErrorPage(res, 400, 'This sign-in has expired', 'Start again from your application.');
    const { interaction, client } = found;
    const form = consentForm.safeParse(req.body);
    const check = this.deps.interactions.checkForm(req, interaction, (req.body as { csrf?: unknown } | undefined)?.csrf);
    if (check !== 'ok') return this.refuseForm(res, check);
    if (!interaction.user) return sendErrorPage(res, 400, 'Sign in first', 'This consent form belongs to a sign-in that has not happened.');
    if (!form.success) throw new InvalidRequestError('the consent form needs action=approve or action=deny');
    if (form.data.action === 'deny') return this.fail(res, interaction, new AccessDeniedError('the user denied access'));
    const account = await this.deps.accounts.find(interaction.user.sub);
    if (!account || account.disabled) return this.fail(res, interaction, new AccessDeniedError('this account may not sign in'));
    const scopes = this.scopesFor(interaction, account, client);
    await this.deps.consents.remember(account.sub, client.client_id, scopes, interaction.resource);
    await this.finish(res, interaction, client, account, scopes);
  }

  private refuseForm(res: Response, why: 'csrf' | 'browser'): void {
    sendErrorPage(
      res,
      403,
      'This form cannot be used',
      why === 'csrf' ? 'The form is out of date or was not sent by this sign-in page. Start again from your application.' : 'This sign-in was started in another browser. Start again from your application.',
    );
  }

  /** Issue the code and send the browser back to the client: once per interaction. */
  private async finish(res: Response, interaction: Interaction, client: Client, account: Account, scopes: string[]): Promise<void> {
    const ended = await this.deps.interactions.consume(interaction.id);
    if (!ended) return sendErrorPage(res, 400, 'This sign-in has already finished', 'Start again from your application.');
    // A dynamic client's first code makes it a used one, which no longer expires.
    await this.deps.clients.used(client);
    const code = await this.deps.grants.issueCode({
      client_id: interaction.client_id,
      redirect_uri: interaction.redirect_uri,
      code_challenge: interaction.code_challenge,
      scope: scopes.join(' '),
      resource: interaction.resource,
      sub: account.sub,
      auth_time: interaction.user?.auth_time ?? epoch(),
    });
    const url = new URL(interaction.redirect_uri);
    url.searchParams.set('code', code);
    if (interaction.state !== undefined) url.searchParams.set('state', interaction.state);
    url.searchParams.set('iss', this.deps.issuer); // RFC 9207: mix-up defence
    res.set('Cache-Control', 'no-store').redirect(303, url.toString());
  }

  async fail(res: Response, interaction: Interaction, error: KeygateError): Promise<void> {
    await this.deps.interactions.consume(interaction.id);
    res.set('Cache-Control', 'no-store').redirect(303, this.errorRedirect({ error, redirectUri: interaction.redirect_uri, state: interaction.state }));
  }
}
