// A fake of the `vscode` module, just large enough to activate the bundled
// extension (dist/extension.cjs) and drive it as VS Code would: it records
// registrations, routes authentication.getSession to the registered provider,
// and plays the browser through `browser` when the extension opens a URL.
// It imports nothing from 'vscode'; the bundle require()s it in its place.

import { Emitter } from '../../extension/events.ts';

type Listener<T> = (e: T) => unknown;

export class Disposable {
  constructor(private readonly fn: () => unknown = () => {}) {}
  static from(...items: { dispose(): unknown }[]) {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose() {
    this.fn();
  }
}

/** vscode.Uri, enough of it: query is percent-decoded, toString(true) does not re-encode. */
export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
  ) {}
  static parse(value: string) {
    const url = new URL(value);
    return new Uri(url.protocol.slice(0, -1), url.host, decodeURIComponent(url.pathname), decodeURIComponent(url.search.slice(1)));
  }
  static from(parts: { scheme: string; authority?: string; path?: string; query?: string }) {
    return new Uri(parts.scheme, parts.authority ?? '', parts.path ?? '', parts.query ?? '');
  }
  static joinPath(base: Uri, ...segments: string[]) {
    return new Uri(base.scheme, base.authority, [base.path.replace(/\/$/, ''), ...segments].join('/'), '');
  }
  toString(skipEncoding = false) {
    if (!skipEncoding) throw new Error('the fake only serializes with toString(true), as the extension must');
    return `${this.scheme}://${this.authority}${this.path}${this.query ? `?${this.query}` : ''}`;
  }
}

export class McpHttpServerDefinition {
  constructor(
    readonly label: string,
    public uri: Uri,
    public headers: Record<string, string> = {},
    public version?: string,
  ) {}
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum UIKind {
  Desktop = 1,
  Web = 2,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export class EventEmitter<T> extends Emitter<T> {}

/** A webview view as VS Code hands it to resolveWebviewView; `posted` is what the extension sent the page. */
export function fakeWebviewView() {
  const received = new Emitter<unknown>();
  const posted: any[] = [];
  const view = {
    visible: true,
    webview: {
      options: {} as unknown,
      html: '',
      cspSource: 'https://fake.vscode-cdn.net',
      asWebviewUri: (uri: Uri) => Uri.parse(`https://fake.vscode-cdn.net${uri.path}`),
      postMessage: async (message: unknown) => {
        posted.push(message);
        return true;
      },
      onDidReceiveMessage: received.event,
    },
    onDidChangeVisibility: new Emitter<void>().event,
    onDidDispose: new Emitter<void>().event,
  };
  /** What the page posts (a `ready` first, as the real script does). */
  const send = (message: unknown) => received.fire(message);
  return { view, posted, send };
}

export interface FakeVscodeState {
  settings: Map<string, unknown>;
  commands: Map<string, (...args: unknown[]) => unknown>;
  authProviders: Map<string, { label: string; provider: any; options: unknown }>;
  mcpProviders: Map<string, any>;
  uriHandlers: any[];
  outputChannels: Map<string, string[]>;
  messages: string[];
  /** What the person does with a URL the extension opens (default: nothing). */
  browser: (url: string) => Promise<void>;
  /** Answers to quick picks, input boxes and modal warnings, in order. */
  answers: unknown[];
  webviewProviders: Map<string, any>;
  contentProviders: Map<string, any>;
  statusBar: { text: string; tooltip: string; command: string; shown: boolean }[];
  context: Map<string, unknown>;
  executed: string[];
  clipboard: string;
  documents: string[];
  windowState: Emitter<{ focused: boolean }>;
}

export function createFakeVscode(uriScheme = 'vscode', uiKind: UIKind = UIKind.Desktop) {
  const state: FakeVscodeState = {
    settings: new Map(),
    commands: new Map(),
    authProviders: new Map(),
    mcpProviders: new Map(),
    uriHandlers: [],
    outputChannels: new Map(),
    messages: [],
    browser: async () => {},
    answers: [],
    webviewProviders: new Map(),
    contentProviders: new Map(),
    statusBar: [],
    context: new Map(),
    executed: [],
    clipboard: '',
    documents: [],
    windowState: new Emitter(),
  };
  const configChanged = new Emitter<{ affectsConfiguration(section: string): boolean }>();
  const answer = async (kind: string, ...rest: unknown[]) => {
    state.messages.push(`${kind}: ${rest.filter((r) => typeof r === 'string').join(' | ')}`);
    return state.answers.shift();
  };
  const channel = (name: string) => {
    const lines: string[] = [];
    state.outputChannels.set(name, lines);
    const write = (level: string) => (line: string) => lines.push(`${level} ${line}`);
    return { info: write('info'), warn: write('warn'), error: write('error'), dispose() {} };
  };

  const vscode = {
    Disposable,
    Uri,
    McpHttpServerDefinition,
    ProgressLocation,
    ConfigurationTarget,
    UIKind,
    StatusBarAlignment,
    ThemeColor,
    EventEmitter,
    env: {
      clipboard: {
        writeText: async (text: string) => {
          state.clipboard = text;
        },
      },
      uriScheme,
      uiKind,
      // Desktop VS Code: an app URI comes back unchanged.
      asExternalUri: async (uri: Uri) => uri,
      openExternal: async (target: unknown) => {
        if (typeof target !== 'string') throw new Error('the fake expects the authorization URL as a string');
        void state.browser(target);
        return true;
      },
    },
    window: {
      createStatusBarItem: () => {
        const item = { text: '', tooltip: '', command: '', shown: false, name: '', backgroundColor: undefined, accessibilityInformation: undefined, show() { item.shown = true; }, dispose() {} };
        state.statusBar.push(item);
        return item;
      },
      registerWebviewViewProvider: (id: string, provider: unknown) => {
        state.webviewProviders.set(id, provider);
        return new Disposable(() => state.webviewProviders.delete(id));
      },
      onDidChangeWindowState: state.windowState.event,
      showTextDocument: async (doc: { text: string }) => {
        state.documents.push(doc.text);
      },
      createOutputChannel: (name: string) => channel(name),
      registerUriHandler: (handler: unknown) => {
        if (state.uriHandlers.length) throw new Error('Protocol handler already registered for extension keygate.keygate');
        state.uriHandlers.push(handler);
        return new Disposable(() => state.uriHandlers.splice(state.uriHandlers.indexOf(handler), 1));
      },
      withProgress: async (_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>) => {
        const cancel = new Emitter<void>();
        return task({ report() {} }, { isCancellationRequested: false, onCancellationRequested: cancel.event });
      },
      showInformationMessage: (...args: unknown[]) => answer('info', ...args),
      showWarningMessage: (...args: unknown[]) => answer('warning', ...args),
      showErrorMessage: (...args: unknown[]) => answer('error', ...args),
      showQuickPick: async (items: { label: string }[]) => {
        const pick = state.answers.shift() as (items: { label: string }[]) => unknown;
        return pick(items);
      },
      showInputBox: async (options: { validateInput?: (v: string) => unknown }) => {
        const value = state.answers.shift() as string;
        if (options.validateInput?.(value)) throw new Error(`the fake typed an invalid value: ${value}`);
        return value;
      },
    },
    workspace: {
      getConfiguration: (section: string) => ({
        get: <T>(key: string) => state.settings.get(`${section}.${key}`) as T | undefined,
        update: async (key: string, value: unknown) => {
          state.settings.set(`${section}.${key}`, value);
          configChanged.fire({ affectsConfiguration: (s: string) => s === `${section}.${key}` || s === section });
        },
      }),
      registerTextDocumentContentProvider: (scheme: string, provider: unknown) => {
        state.contentProviders.set(scheme, provider);
        return new Disposable(() => state.contentProviders.delete(scheme));
      },
      openTextDocument: async (uri: Uri) => ({ uri, text: await state.contentProviders.get(uri.scheme).provideTextDocumentContent(uri) }),
      onDidChangeConfiguration: (listener: Listener<{ affectsConfiguration(section: string): boolean }>) => configChanged.event(listener),
    },
    commands: {
      registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => {
        state.commands.set(id, fn);
        return new Disposable(() => state.commands.delete(id));
      },
      executeCommand: async (id: string, ...args: unknown[]) => {
        state.executed.push(id);
        if (id === 'setContext') {
          state.context.set(args[0] as string, args[1]);
          return undefined;
        }
        return state.commands.get(id)?.(...args);
      },
    },
    authentication: {
      registerAuthenticationProvider: (id: string, label: string, provider: unknown, options: unknown) => {
        state.authProviders.set(id, { label, provider, options });
        return new Disposable(() => state.authProviders.delete(id));
      },
      // What VS Code does with one account: the provider's session, or a new one when asked to.
      getSession: async (id: string, scopes: string[], options: { createIfNone?: boolean; silent?: boolean }) => {
        const { provider } = state.authProviders.get(id)!;
        const [session] = await provider.getSessions(scopes, {});
        if (session || !options.createIfNone) return session;
        return provider.createSession(scopes, {});
      },
    },
    lm: {
      registerMcpServerDefinitionProvider: (id: string, provider: unknown) => {
        state.mcpProviders.set(id, provider);
        return new Disposable(() => state.mcpProviders.delete(id));
      },
    },
  };
  return { vscode, state };
}
