// Stand-ins for the VS Code side of the extension (and only for that): an
// in-memory SecretStorage, a recording output channel, and a "person at the
// browser" who signs in on the real registry's login page and lets the
// editor hand the redirect to the extension's UriHandler.

import { AuthCallbacks } from '../../extension/auth/callbacks.ts';
import { Keychain, type SecretStore } from '../../extension/auth/keychain.ts';
import { OAuthFlow } from '../../extension/auth/oauth-flow.ts';
import { KeygateAuthProvider } from '../../extension/auth/provider.ts';
import { REFRESH_MARGIN_MS, Refresher } from '../../extension/auth/refresher.ts';
import { SessionStore } from '../../extension/auth/session-store.ts';
import { signIn, type SignInUi } from '../../extension/auth/sign-in.ts';
import { Emitter } from '../../extension/events.ts';
import { Logger, type LogSink } from '../../extension/log.ts';
import { RegistryClient, type Fetch } from '../../extension/registry-client.ts';
import { authorizeWithLogin } from '../helpers/form.ts';

export const VSCODE_REDIRECT = 'vscode://keygate.keygate/auth-callback';
export const codeServerRedirect = (port: number) =>
  `http://127.0.0.1:${port}/stable-abc/callback?vscode-reqid=1&vscode-scheme=code-oss&vscode-authority=keygate.keygate&vscode-path=%2Fauth-callback`;

export class MemorySecretStore implements SecretStore {
  readonly values = new Map<string, string>();
  private readonly changed = new Emitter<{ key: string }>();
  readonly onDidChange = this.changed.event;

  async get(key: string) {
    return this.values.get(key);
  }
  async store(key: string, value: string) {
    this.values.set(key, value);
    this.changed.fire({ key });
  }
  async delete(key: string) {
    this.values.delete(key);
    this.changed.fire({ key });
  }
}

export class RecordingSink implements LogSink {
  readonly lines: string[] = [];
  info(line: string) {
    this.lines.push(`info ${line}`);
  }
  warn(line: string) {
    this.lines.push(`warn ${line}`);
  }
  error(line: string) {
    this.lines.push(`error ${line}`);
  }
}

export interface TokenRequest {
  grantType: string | null;
  params: URLSearchParams;
}

/** fetch, noting every token endpoint request (the grant and its parameters). */
export function recordingFetch(): { fetch: Fetch; tokenRequests: TokenRequest[] } {
  const tokenRequests: TokenRequest[] = [];
  const wrapped: Fetch = async (input, init) => {
    if (new URL(String(input)).pathname === '/oauth/token') {
      const params = new URLSearchParams(init?.body as URLSearchParams | string);
      tokenRequests.push({ grantType: params.get('grant_type'), params });
    }
    return fetch(input, init);
  };
  return { fetch: wrapped, tokenRequests };
}

/** A frozen clock the test moves by hand. */
export class Clock {
  constructor(public ms = Date.now()) {}
  readonly now = () => this.ms;
}

export interface Person {
  username: string;
  password: string;
}

/**
 * The editor and the person in front of it: hands out `redirectUri`, and when
 * asked to open the browser, signs in on the registry's real login page and
 * delivers the redirect the way VS Code does (code-server's callback page
 * drops its vscode-* parameters first). `intercept` may rewrite the redirect.
 */
export class BrowserUi implements SignInUi {
  opened: string[] = [];
  redirects: URLSearchParams[] = [];
  cancel: (() => void) | undefined;

  constructor(
    private readonly callbacks: AuthCallbacks,
    private readonly person: Person | undefined,
    readonly redirect = VSCODE_REDIRECT,
    private readonly intercept: (params: URLSearchParams) => URLSearchParams = (p) => p,
  ) {}

  async redirectUri() {
    return this.redirect;
  }

  async openBrowser(url: string) {
    this.opened.push(url);
    if (!this.person) return true; // the person never comes back
    const params = await authorizeWithLogin(url, this.person.username, this.person.password);
    this.redirects.push(new URLSearchParams(params));
    const delivered = new URLSearchParams([...params].filter(([name]) => !name.startsWith('vscode-')));
    // vscode.Uri#query is percent-decoded by the time the UriHandler sees it.
    this.callbacks.handleUri('/auth-callback', decodeURIComponent(this.intercept(delivered).toString()));
    return true;
  }

  withProgress<T>(_title: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    this.cancel = () => controller.abort();
    return task(controller.signal);
  }
}

/** The extension's auth side, wired as activate() wires it, over fakes of VS Code only. */
export function authHarness(registry: string, person: Person | undefined, options: { redirect?: string; clock?: Clock } = {}) {
  const sink = new RecordingSink();
  const log = new Logger(sink);
  const secrets = new MemorySecretStore();
  const store = new SessionStore(new Keychain(secrets, log), log);
  const { fetch, tokenRequests } = recordingFetch();
  const clock = options.clock ?? new Clock();
  const flow = new OAuthFlow({ registry, fetch, now: clock.now, onSecret: (v) => log.addSecret(v) });
  const callbacks = new AuthCallbacks(log);
  const ui = new BrowserUi(callbacks, person, options.redirect);
  const registryClient = new RegistryClient(registry, fetch);
  const refresher = new Refresher({ store, refresh: (s, token) => flow.refreshTokenGrant(token, s.scopes), log, now: clock.now, marginMs: REFRESH_MARGIN_MS });
  let current: string | undefined = registry;
  const auth = new KeygateAuthProvider({
    registry: () => current,
    store,
    refresher,
    ui,
    log,
    signIn: (_registry, signal) => signIn({ flow, registryClient, callbacks, ui, log }, signal),
  });
  return {
    sink,
    log,
    secrets,
    store,
    flow,
    callbacks,
    ui,
    registryClient,
    refresher,
    auth,
    clock,
    tokenRequests,
    setRegistry(url: string | undefined) {
      current = url;
    },
  };
}

/** A Scheduler on a frozen clock: timers run only when the test moves time on. */
export class FakeScheduler {
  ms = 1_700_000_000_000;
  private timers: { id: number; at: number; run: () => void }[] = [];
  private nextId = 1;
  readonly now = () => this.ms;
  setTimeout = (run: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.push({ id, at: this.ms + ms, run });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.timers = this.timers.filter((t) => t.id !== handle);
  };
  /** Delays of the pending timers, from now. */
  get pending(): number[] {
    return this.timers.map((t) => t.at - this.ms).sort((a, b) => a - b);
  }
  /** Move time on by `ms`, running every timer that falls due (in order). */
  advance(ms: number): void {
    const until = this.ms + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.ms = due.at;
      due.run();
    }
    this.ms = until;
  }
}
