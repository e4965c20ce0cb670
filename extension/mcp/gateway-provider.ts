import { RegistryHttpError } from '../errors.ts';
import { Emitter, type Disposable, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import type { Gateway, RegistryClient } from '../registry-client.ts';
import { isWithinRegistry } from '../registry-url.ts';
import { gatewayDefinitions, type GatewayDefinition } from './definitions.ts';

// The logic of the `keygate.gateways` MCP server definition provider, without
// VS Code. Listing is eager and silent (VS Code calls it at any time, so no
// prompts); resolving happens just before VS Code starts a server, and may ask
// the user to sign in.

/** Where access tokens come from (the adapter asks vscode.authentication). */
export interface SessionSource {
  /** The signed-in session's fresh access token, or undefined; never shows UI. */
  silent(): Promise<string | undefined>;
  /** Like silent, but asks the user to sign in when signed out; undefined when they decline. */
  interactive(): Promise<string | undefined>;
}

export interface GatewayProviderDeps {
  /** The canonical registry URL in use; undefined while the setting is not a valid URL. */
  registry(): string | undefined;
  client(registry: string): RegistryClient;
  sessions: SessionSource;
  /** The X-Keygate-Credentials value for a gateway's client-held servers, if it has any stored. */
  clientCredentials?(registry: string, gatewayId: string): Promise<string | undefined>;
  /** A call to the registry failed (the sidebar's watch then checks it at once). */
  failed?(err: unknown): void;
  log: Logger;
}

export class GatewayDefinitionProvider implements Disposable {
  private readonly changed = new Emitter<void>();
  readonly onDidChange: Event<void> = this.changed.event;
  /** What the last listing offered, by endpoint: resolve needs the visibility. */
  private offered = new Map<string, GatewayDefinition>();
  /**
   * Goes up whenever the token or an identity changes, and is part of every
   * definition's version: a new version makes VS Code restart the server (with
   * headers resolved again) and read its tools again.
   */
  private generation = 0;

  constructor(private readonly deps: GatewayProviderDeps) {}

  /** Ask VS Code to list again (signed in or out, another registry). */
  refresh(): void {
    this.changed.fire();
  }

  /** A token or an identity changed: new versions for every definition, and VS Code is told. */
  bump(): void {
    this.generation++;
    this.changed.fire();
  }

  /** What the last listing offered. */
  get definitions(): GatewayDefinition[] {
    return [...this.offered.values()];
  }

  async provide(): Promise<GatewayDefinition[]> {
    const registry = this.deps.registry();
    if (!registry) return [];
    let token: string | undefined;
    try {
      token = await this.deps.sessions.silent();
    } catch (err) {
      this.deps.log.warn('listing gateways without signing in', err);
    }
    let gateways: Gateway[];
    try {
      gateways = await this.listGateways(registry, token);
    } catch (err) {
      this.deps.log.error(`could not list the gateways of ${registry}`, err);
      this.deps.failed?.(err);
      return [];
    }
    const { definitions, skipped } = gatewayDefinitions(registry, gateways, this.generation);
    for (const s of skipped) this.deps.log.warn(`not offering gateway ${s.gatewayId}: ${s.reason}`);
    this.offered = new Map(definitions.map((d) => [d.uri, d]));
    this.deps.log.info(`offering ${definitions.length} gateway(s) from ${registry}${token ? '' : ' (signed out: public gateways only)'}`);
    return definitions;
  }

  private async listGateways(registry: string, token: string | undefined): Promise<Gateway[]> {
    const client = this.deps.client(registry);
    try {
      return await client.gateways(token);
    } catch (err) {
      // A token the registry no longer accepts: still show what anyone may see.
      if (token && err instanceof RegistryHttpError && err.status === 401) {
        this.deps.log.warn('the registry rejected the access token; listing public gateways only', err);
        return client.gateways();
      }
      throw err;
    }
  }

  /**
   * The headers to start the gateway at `uri` with, or undefined to not start
   * it. Private gateways need a session (the user is asked to sign in); public
   * ones take the caller's token when there is one and work without.
   */
  async resolveHeaders(uri: string, options: { interactive?: boolean } = {}): Promise<Record<string, string> | undefined> {
    const interactive = options.interactive ?? true;
    const registry = this.deps.registry();
    if (!registry || !isWithinRegistry(registry, uri)) {
      // Offered for a previous registry: its tokens are gone, and this registry's must not go there.
      this.deps.log.warn(`not starting ${uri}: it is not on the current registry ${registry ?? '(none)'}`);
      return undefined;
    }
    const definition = this.offered.get(uri);
    const isPublic = definition?.visibility === 'public';
    const token = isPublic || !interactive ? await this.deps.sessions.silent().catch(() => undefined) : await this.deps.sessions.interactive();
    if (!token) {
      if (isPublic) return {};
      this.deps.log.info(`not starting ${definition?.label ?? uri}: not signed in`);
      return undefined;
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    // storage: client servers: the values this editor keeps go along with every request to the gateway.
    const held = definition && this.deps.clientCredentials ? await this.deps.clientCredentials(registry, definition.gatewayId).catch(() => undefined) : undefined;
    if (held) headers['X-Keygate-Credentials'] = held;
    return headers;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
