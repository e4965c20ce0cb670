import { assertNever, type ToExtension, type ToWebview, type ViewModel } from '../../webview/protocol.ts';
import { formProblems, typedValues } from '../../webview/fields.ts';
import { describeError, RegistryHttpError, RegistryUnreachableError, SessionExpiredError } from '../errors.ts';
import { Emitter, type Disposable, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import type { MeClient, MyServer, NewIdentity } from '../me-client.ts';
import type { Health } from '../registry-client.ts';
import type { StoredClientCredentials } from '../credentials/client-store.ts';
import { Backoff, CONNECT_POLL_BACKOFF, CONNECT_WATCH_MS, HEALTH_INTERVAL_MS, SERVERS_EVERY_CHECKS, Timer, UNREACHABLE_BACKOFF, type BackoffOptions, type Scheduler } from './schedule.ts';
import { buildGateways, formFields, identityDigest, serverKey } from './view-model.ts';

// The sidebar's logic, without VS Code: reads the person's servers from the
// registry, turns them into the view model, and carries out what the webview
// asks (save a credential form, connect in the browser, disconnect, choose an
// identity, make one private or global). Refreshes are single-flight. While
// signed in, the registry is watched (GET /healthz every few seconds, and at
// once when any call the extension makes fails), so an outage shows within
// seconds even while nothing else happens; the servers are read again every
// minute and on window focus, so what others changed shows too; a registry that does not answer is
// retried with backoff and said once, not on every attempt. When it comes
// back after an outage or a restart, onDidReconnect tells the MCP side to
// reconnect. A browser connect is watched by polling with backoff (and on
// window focus) until the server turns ready.

export interface SidebarSession {
  /** The signed-in session for `registry`, its token fresh; undefined when signed out. */
  current(registry: string): Promise<{ accessToken: string; account: string } | undefined>;
  /** The registry refused `accessToken`: a new one (refreshed), or undefined when the session has ended. */
  replace(registry: string, accessToken: string): Promise<string | undefined>;
}

/** The part of ClientCredentialStore the sidebar uses. */
export interface ClientValues {
  all(registry: string): Promise<StoredClientCredentials>;
  merge(registry: string, gateway: string, server: string, values: Record<string, string>): Promise<void>;
  remove(registry: string, gateway: string, server: string): Promise<void>;
}

export interface SidebarDeps {
  registry(): string | undefined;
  session: SidebarSession;
  me(registry: string): Pick<MeClient, 'servers' | 'createIdentity' | 'updateIdentity' | 'deleteIdentity' | 'select' | 'clearSelection'>;
  /** GET /healthz of `registry` (RegistryClient.health). */
  health(registry: string): Promise<Health>;
  clientValues: ClientValues;
  /** Open a connect page in the browser. */
  openExternal(url: string): Promise<boolean>;
  /** The palette commands, for the signed-out view's buttons. */
  signIn(): Promise<void>;
  selectRegistry(): Promise<void>;
  scheduler: Scheduler;
  log: Logger;
  backoff?: { unreachable?: BackoffOptions; connectPoll?: BackoffOptions };
}

const SIGNED_OUT: ViewModel = { status: 'signed_out', gateways: [] };

export class SidebarController implements Disposable {
  private readonly viewChanged = new Emitter<ViewModel>();
  readonly onDidChangeView: Event<ViewModel> = this.viewChanged.event;
  private readonly identitiesChanged = new Emitter<void>();
  /** Who serves which server changed (a save, a connect that finished, another window): MCP clients must restart. */
  readonly onDidChangeIdentities: Event<void> = this.identitiesChanged.event;
  private readonly sessionEnded = new Emitter<void>();
  /** The registry no longer accepts the session and it could not be renewed. */
  readonly onDidEndSession: Event<void> = this.sessionEnded.event;
  private readonly reconnected = new Emitter<void>();
  /**
   * The registry answers again after an outage, or restarted (a new epoch):
   * the MCP sessions clients held with it may be gone, so they should reconnect.
   */
  readonly onDidReconnect: Event<void> = this.reconnected.event;

  private current: ViewModel = SIGNED_OUT;
  private servers: MyServer[] = [];
  private clientStored: StoredClientCredentials = {};
  private digest: string | undefined;
  /** Browser connects under way, by server key: when each started. */
  private readonly pending = new Map<string, number>();
  private running: Promise<void> | undefined;
  private again = false;
  private readonly timer: Timer;
  private readonly healthTimer: Timer;
  /** The epoch the registry last reported, and whether it was out of reach since. */
  private health: { registry: string; epoch: string | undefined; outage: boolean } | undefined;
  private checking: Promise<void> | undefined;
  /** Health checks passed since the servers were last read. */
  private checksSinceLoad = 0;
  private readonly unreachableBackoff: Backoff;
  private readonly pollBackoff: Backoff;
  private disposed = false;

  constructor(private readonly deps: SidebarDeps) {
    this.timer = new Timer(deps.scheduler);
    this.healthTimer = new Timer(deps.scheduler);
    this.unreachableBackoff = new Backoff(deps.backoff?.unreachable ?? UNREACHABLE_BACKOFF);
    this.pollBackoff = new Backoff(deps.backoff?.connectPoll ?? CONNECT_POLL_BACKOFF);
  }

  get view(): ViewModel {
    return this.current;
  }

  /** Whether a browser connect is being watched. */
  get watching(): boolean {
    return this.pending.size > 0;
  }

  /** Read everything again. Callers during a refresh share it, and one more follows it. */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again && !this.disposed);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * The window got focus: the person may have finished a connect in the
   * browser, someone may have changed what serves them, or the registry may
   * have gone. Read the servers again (signed out: nothing to read).
   */
  focused(): void {
    if (this.current.status === 'ready' || this.pending.size || this.current.status === 'registry_unreachable') void this.refresh();
  }

  /**
   * A call to the registry made elsewhere (the MCP definitions, a token
   * refresh, a command) failed: check now rather than at the next interval.
   */
  callFailed(err: unknown): void {
    if (err instanceof SessionExpiredError || err instanceof FormError) return;
    void this.checkHealth();
  }

  /**
   * GET /healthz while signed in and shown ready: a failure shows the
   * registry as unreachable at once (and retries with backoff); an answer
   * after an outage, or with a new epoch (the registry restarted), fires
   * onDidReconnect. Then the next check is scheduled. Single-flight.
   */
  checkHealth(): Promise<void> {
    this.checking ??= this.runHealthCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runHealthCheck(): Promise<void> {
    const registry = this.deps.registry();
    const account = this.current.account;
    // Still shown ready for the same registry and account (refreshes may have redrawn it meanwhile)?
    const watched = () => this.current.status === 'ready' && registry !== undefined && this.current.registry === registry && this.current.account === account && !this.disposed;
    if (!watched() || !registry || !account) return;
    this.healthTimer.cancel();
    let health: Health;
    try {
      health = await this.deps.health(registry);
    } catch (err) {
      // Unless something else changed the view meanwhile (a sign-out, another registry).
      if (watched()) this.unreachable(registry, account, err, false);
      return;
    }
    if (!watched()) return;
    const known = this.health?.registry === registry ? this.health : undefined;
    const restarted = known !== undefined && (health.epoch === undefined ? known.outage : health.epoch !== known.epoch);
    this.health = { registry, epoch: health.epoch, outage: false };
    if (restarted) {
      this.deps.log.info(`the registry at ${registry} ${known.epoch !== health.epoch ? 'restarted' : 'is back'}: MCP connections to it restart`);
      this.reconnected.fire();
    }
    this.healthTimer.schedule(HEALTH_INTERVAL_MS, () => void this.checkHealth());
    if (++this.checksSinceLoad >= SERVERS_EVERY_CHECKS) void this.refresh();
  }

  private async load(): Promise<void> {
    const registry = this.deps.registry();
    if (!registry) return this.show({ status: 'no_registry', message: 'Set the registry URL (Keygate: Select Registry).', gateways: [] });
    const session = await this.deps.session.current(registry).catch((err: unknown) => {
      this.deps.log.warn('could not read the session', err);
      return undefined;
    });
    if (!session) {
      this.dropSession();
      this.noteIdentities();
      return this.show({ ...SIGNED_OUT, registry, ...(this.current.status === 'session_ended' && { status: 'session_ended', message: this.current.message }) });
    }
    const wasUnreachable = this.current.status === 'registry_unreachable';
    if (this.current.status === 'signed_out' || this.current.status === 'no_registry' || this.current.registry !== registry || this.current.account !== session.account) {
      this.show({ registry, account: session.account, status: 'loading', gateways: [] });
    }
    try {
      const [servers, clientStored] = await Promise.all([
        this.withToken(registry, session.accessToken, (token) => this.deps.me(registry).servers(token)),
        this.deps.clientValues.all(registry),
      ]);
      if (wasUnreachable) this.deps.log.info(`the registry at ${registry} answers again`);
      this.servers = servers;
      this.clientStored = clientStored;
      this.checksSinceLoad = 0;
      this.unreachableBackoff.reset();
      this.settlePending();
      this.noteIdentities();
      this.render(registry, session.account);
      // Watched from now on; right away when it was out of reach, to learn whether it restarted meanwhile.
      if (wasUnreachable || !this.healthTimer.dueAt) void this.checkHealth();
    } catch (err) {
      if (err instanceof SessionExpiredError) {
        this.dropSession();
        this.show({ registry, status: 'session_ended', message: 'The registry no longer accepts your session. Sign in again.', gateways: [] });
        this.sessionEnded.fire();
        return;
      }
      // Down, or any other failed answer (a 500, an unexpected body): shown, retried with backoff.
      return this.unreachable(registry, session.account, err, wasUnreachable);
    }
  }

  private unreachable(registry: string, account: string, err: unknown, wasUnreachable: boolean): void {
    const first = !wasUnreachable;
    // Said once per outage; the retries are quiet.
    if (first) this.deps.log.warn(`the registry at ${registry} cannot be reached; retrying with backoff`, err);
    this.healthTimer.cancel();
    if (this.health?.registry === registry) this.health.outage = true;
    else this.health = { registry, epoch: undefined, outage: true };
    const delay = this.unreachableBackoff.next();
    const retryAt = this.timer.schedule(delay, () => void this.refresh());
    const reason = err instanceof RegistryUnreachableError ? 'The registry does not answer.' : `The registry answered with an error: ${describeError(err)}`;
    this.show({ registry, account, status: 'registry_unreachable', message: reason, retryAt, gateways: this.current.gateways });
  }

  /** No session (signed out, or it ended): nothing listed, nothing polled, the registry not watched. */
  private dropSession(): void {
    this.servers = [];
    this.pending.clear();
    this.timer.cancel();
    this.healthTimer.cancel();
  }

  /** Forget connects that finished (the server is no longer waiting for one) or that nobody finished in time. */
  private settlePending(): void {
    const now = this.deps.scheduler.now();
    for (const [key, started] of this.pending) {
      const s = this.servers.find((x) => serverKey(x.gateway.id, x.server) === key);
      const waiting = s && (s.state === 'needs_authorization' || s.state === 'needs_credentials');
      if (!waiting || now - started > CONNECT_WATCH_MS) this.pending.delete(key);
    }
    if (this.pending.size) {
      this.timer.schedule(this.pollBackoff.next(), () => void this.refresh());
    } else {
      this.pollBackoff.reset();
      this.timer.cancel();
    }
  }

  private noteIdentities(): void {
    const digest = identityDigest(this.servers, this.clientStored);
    if (this.digest !== undefined && digest !== this.digest) this.identitiesChanged.fire();
    this.digest = digest;
  }

  private render(registry: string, account: string): void {
    const gateways = buildGateways({ servers: this.servers, clientValues: this.clientStored, pending: new Set(this.pending.keys()) });
    this.show({ registry, account, status: 'ready', gateways });
  }

  private show(view: ViewModel): void {
    this.current = view;
    if (!this.disposed) this.viewChanged.fire(view);
  }

  /** Run a request with the token; on 401, once more with a renewed one. SessionExpiredError when there is none. */
  private async withToken<T>(registry: string, token: string, request: (token: string) => Promise<T>): Promise<T> {
    try {
      return await request(token);
    } catch (err) {
      if (!(err instanceof RegistryHttpError && err.status === 401)) throw err;
      this.deps.log.warn('the registry refused the access token; renewing it once', err);
      const renewed = await this.deps.session.replace(registry, token).catch((e: unknown) => {
        if (e instanceof SessionExpiredError) return undefined;
        throw e;
      });
      if (!renewed || renewed === token) throw new SessionExpiredError('the registry no longer accepts the session');
      try {
        return await request(renewed);
      } catch (again) {
        if (again instanceof RegistryHttpError && again.status === 401) throw new SessionExpiredError('the registry refused the renewed token too', { cause: again });
        throw again;
      }
    }
  }

  /** Handle one (validated) message from the webview; the answer, if any, goes back to it. */
  async handle(message: ToExtension): Promise<ToWebview | undefined> {
    switch (message.type) {
      case 'ready':
        if (this.current === SIGNED_OUT) void this.refresh();
        return { type: 'view', view: this.current };
      case 'signIn':
        await this.deps.signIn();
        return undefined;
      case 'selectRegistry':
        await this.deps.selectRegistry();
        return undefined;
      case 'refresh':
        this.unreachableBackoff.reset();
        await this.refresh();
        return undefined;
      case 'saveCredentials':
      case 'connect':
      case 'disconnect':
      case 'chooseIdentity':
      case 'setAvailability':
        return this.act(message);
      default:
        return assertNever(message);
    }
  }

  private async act(message: Extract<ToExtension, { gateway: string }>): Promise<ToWebview> {
    const { gateway, server } = message;
    const result = (ok: boolean, text: string): ToWebview => ({ type: 'result', gateway, server, ok, message: text });
    const registry = this.deps.registry();
    const s = this.servers.find((x) => x.gateway.id === gateway && x.server === server);
    if (!registry || !s) return result(false, 'This server is no longer listed. Refresh the view.');
    const session = await this.deps.session.current(registry).catch(() => undefined);
    if (!session) return result(false, 'Sign in first.');
    try {
      const text = await this.withToken(registry, session.accessToken, (token) => this.perform(registry, token, s, message));
      await this.refresh();
      return result(true, text);
    } catch (err) {
      if (err instanceof SessionExpiredError) {
        await this.refresh();
        return result(false, 'The registry no longer accepts your session. Sign in again.');
      }
      if (err instanceof FormError) return result(false, err.message);
      this.deps.log.error(`${message.type} for ${gateway}/${server} failed`, err);
      this.callFailed(err);
      const text = err instanceof RegistryHttpError ? (err.description ?? err.message) : describeError(err);
      return result(false, text);
    }
  }

  private async perform(registry: string, token: string, s: MyServer, message: Extract<ToExtension, { gateway: string }>): Promise<string> {
    const me = this.deps.me(registry);
    const key = serverKey(s.gateway.id, s.server);
    switch (message.type) {
      case 'saveCredentials':
        return this.save(registry, token, s, message.values, message.availability);
      case 'connect': {
        if (s.credential.type !== 'oauth') throw new FormError('This server takes a credential form, not a browser sign-in.');
        this.pending.set(key, this.deps.scheduler.now());
        this.pollBackoff.reset();
        if (!(await this.deps.openExternal(s.connectUrl))) {
          this.pending.delete(key);
          throw new FormError(`Could not open a browser. Open ${s.connectUrl} yourself.`);
        }
        return `Finish connecting ${s.upstream.name} in the browser; this view updates when you are done.`;
      }
      case 'disconnect':
        if (s.storage === 'client') {
          await this.deps.clientValues.remove(registry, s.gateway.id, s.server);
          this.identitiesChanged.fire();
          return "Removed from this editor's secret storage.";
        }
        if (s.identity?.owner === 'you') await me.deleteIdentity(token, s.identity.id);
        await me.clearSelection(token, s.gateway.id, s.server).catch((err: unknown) => {
          if (!(err instanceof RegistryHttpError && err.status === 404)) throw err;
        });
        return s.identity?.owner === 'you' ? 'Disconnected; your identity was deleted.' : 'Disconnected.';
      case 'chooseIdentity':
        await me.select(token, { gateway: s.gateway.id, server: s.server, identity: message.identity });
        return 'Identity chosen.';
      case 'setAvailability': {
        const identity = s.choices.find((c) => c.id === message.identity) ?? s.identity;
        if (!identity || identity.id !== message.identity || identity.owner !== 'you') throw new FormError('Only your own identities can be made private or global.');
        await me.updateIdentity(token, identity.id, { availability: message.availability });
        return message.availability === 'global' ? 'Others in your organization may now select this identity.' : 'Only you can use this identity now.';
      }
      default:
        return assertNever(message);
    }
  }

  private async save(registry: string, token: string, s: MyServer, raw: Readonly<Record<string, string>>, availability: 'private' | 'global'): Promise<string> {
    const stored = s.storage === 'client' ? this.clientStored[serverKey(s.gateway.id, s.server)] : undefined;
    const fields = formFields(s, stored);
    if (s.scheme !== 'per_user' || !fields.length) throw new FormError('This server takes no personal credential.');
    // The webview validated already; what it sends is input all the same.
    const problems = Object.values(formProblems(fields, raw));
    if (problems.length) throw new FormError(problems.join(' '));
    const values = typedValues(raw);

    if (s.storage === 'client') {
      await this.deps.clientValues.merge(registry, s.gateway.id, s.server, values);
      this.identitiesChanged.fire();
      return "Saved in this editor's secret storage; it goes with each call to this server.";
    }

    const me = this.deps.me(registry);
    const secret = (v: Record<string, string>): Pick<NewIdentity, 'values' | 'token' | 'value'> =>
      s.credential.type === 'bearer' ? { token: v.token! } : s.credential.type === 'header' ? { value: v.value! } : { values: v };
    const own = s.identity?.owner === 'you' ? s.identity : undefined;
    if (own) {
      if (Object.keys(values).length === 0) {
        await me.updateIdentity(token, own.id, { availability });
        return 'Saved.';
      }
      // The registry replaces the whole secret, and never sends stored secrets back: a change needs every secret field again.
      const missing = fields.filter((f) => f.required && values[f.name] === undefined);
      if (missing.length) throw new FormError(`To change the stored credentials, fill in ${missing.map((f) => f.label).join(', ')} again (stored secrets are never shown).`);
      await me.updateIdentity(token, own.id, { availability, ...secret(values) });
      return 'Saved.';
    }
    await me.createIdentity(token, { upstream: s.upstream.id, availability, ...secret(values), select: { gateway: s.gateway.id, server: s.server } });
    return `Saved. Calls to ${s.upstream.name} now run with your credentials.`;
  }

  /** Forget the view (signed out, another registry) and read again. */
  reset(): Promise<void> {
    this.timer.cancel();
    this.healthTimer.cancel();
    if (this.health?.registry !== this.deps.registry()) this.health = undefined;
    this.pending.clear();
    this.unreachableBackoff.reset();
    this.pollBackoff.reset();
    if (this.current.status === 'session_ended' && this.deps.registry() !== this.current.registry) this.current = SIGNED_OUT;
    return this.refresh();
  }

  /** The session ended outside the sidebar (a refresh was refused): say so until the next sign-in. */
  ended(): void {
    const registry = this.deps.registry();
    this.dropSession();
    this.show({ ...(registry && { registry }), status: 'session_ended', message: 'The registry no longer accepts your session. Sign in again.', gateways: [] });
  }

  /** Signed in again: a previous "session ended" no longer applies. */
  signedIn(): Promise<void> {
    if (this.current.status === 'session_ended') this.current = SIGNED_OUT;
    return this.reset();
  }

  dispose(): void {
    this.disposed = true;
    this.timer.cancel();
    this.healthTimer.cancel();
    this.reconnected.dispose();
    this.viewChanged.dispose();
    this.identitiesChanged.dispose();
    this.sessionEnded.dispose();
  }
}

/** A problem with what the person asked for, shown beside the form as is. */
class FormError extends Error {}
