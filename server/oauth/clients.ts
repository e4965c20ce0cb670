import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { TOKEN_EXCHANGE_GRANT } from '../config/sections/oauth-server.ts';
import { InvalidClientError } from '../http/errors.ts';
import { Collection, type Store } from '../store/index.ts';
import type { ClientMetadataDocuments } from './client-metadata-document.ts';
import { LOOPBACK_HOSTS, redirectUriMatches, redirectUriProblem as redirectUriProblemFor } from './redirect-uri.ts';
import { CLI_CLIENT_ID } from './builtin-clients.ts';

export const AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'] as const;
export type TokenEndpointAuthMethod = (typeof AUTH_METHODS)[number];

export const clientSchema = z.object({
  client_id: z.string(),
  client_name: z.string().optional(),
  redirect_uris: z.array(z.string()),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  /** SHA-256 of the secret: secrets are 256-bit random, so a fast hash is enough. */
  client_secret_hash: z.string().optional(),
  grant_types: z.array(z.string()),
  response_types: z.array(z.string()),
  scope: z.string().optional(),
  application_type: z.enum(['web', 'native']).optional(),
  client_id_issued_at: z.number(),
  /** builtin: the extension; config: oauth_server.clients; dynamic: RFC 7591; metadata_document: CIMD; admin: /api/v1/admin/clients. */
  source: z.enum(['dynamic', 'builtin', 'config', 'metadata_document', 'admin']),
  updated_at: z.number().optional(),
  /** The admin who created it (source admin). */
  created_by: z.string().optional(),
  /** RFC 7662 §4: an admin made it a protected resource that may introspect tokens (never through registration). */
  resource_server: z.boolean().optional(),
  /** When a code or token was first issued to it (source dynamic): until then the record expires (oauth_server.registration.unused_client_ttl). */
  first_used_at: z.number().optional(),
  /** RFC 8693: an admin allowed it (source admin) to act for users; never set by registration. Lifetime in seconds. */
  token_exchange: z.object({ resources: z.array(z.string()), users: z.array(z.string()).optional(), lifetime: z.number() }).optional(),
});
export type Client = z.infer<typeof clientSchema> & {
  /** Extra rule for clients whose redirect URIs cannot be listed exactly. */
  acceptsRedirect?: (uri: string) => boolean;
  /** RFC 8693: an admin allowed this (configured, confidential) client to act for users. */
  tokenExchange?: TokenExchangePolicy;
};

export interface TokenExchangePolicy {
  /** Resource URIs, or paths relative to the public URL, it may obtain tokens for. */
  resources: string[];
  /** Subjects, emails or "@domain" it may act for; undefined: any active user. */
  users: string[] | undefined;
  /** Seconds. */
  lifetime: number;
}

/** The VS Code / Cursor extension: a public client known to every registry. */
export const EXTENSION_CLIENT_ID = 'keygate-vscode';
export const EXTENSION_ID = 'keygate.keygate';

/** The registry's own web pages (first-party: no consent page). */
export const WEB_CLIENT_ID = 'keygate-web';

/** Editor URI schemes that deliver a redirect to the extension's UriHandler. */
const EDITOR_SCHEMES = ['vscode', 'vscode-insiders', 'vscodium', 'code-oss', 'cursor', 'windsurf'];

const extensionClient: Client = {
  client_id: EXTENSION_CLIENT_ID,
  client_name: 'Keygate for VS Code',
  redirect_uris: EDITOR_SCHEMES.map((s) => `${s}://${EXTENSION_ID}/auth-callback`),
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  application_type: 'native',
  client_id_issued_at: 0,
  source: 'builtin',
  // In a browser-hosted editor (code-server, vscode.dev) vscode.env.asExternalUri
  // turns the vscode:// URI into the editor's own https (or loopback http)
  // /callback page, which hands the query to the extension. Those URLs name the
  // extension in vscode-authority and carry a per-request vscode-reqid, so they
  // are matched by shape: the editor page, our authority and our path.
  acceptsRedirect: (uri) => {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return false;
    }
    if (url.hash) return false;
    const secure = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
    return (
      secure &&
      url.pathname.endsWith('/callback') &&
      url.searchParams.get('vscode-authority') === EXTENSION_ID &&
      url.searchParams.get('vscode-path') === '/auth-callback'
    );
  },
};

/** keygate-registry login (server/cli/login.ts): any loopback port, path /callback (redirect-uri.ts matches loopback URIs whatever their port). */
const cliClient: Client = {
  client_id: CLI_CLIENT_ID,
  client_name: 'keygate-registry (command line)',
  redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback'],
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  application_type: 'native',
  client_id_issued_at: 0,
  source: 'builtin',
};

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** The break-glass switch of a client (`client:{client_id}` in the switches collection), as far as the token endpoint reads it. */
const clientSwitchSchema = z.object({ disabled: z.boolean() });

export class ClientRegistry {
  readonly records: Collection<typeof clientSchema, 'clients'>;
  private readonly switches: Collection<typeof clientSwitchSchema, 'switches'>;

  private readonly configured: Map<string, Client>;

  constructor(
    store: Store,
    configured: Client[] = [],
    private readonly documents?: ClientMetadataDocuments,
    /** The registry's own pages (/connect, /admin) sign people in as this first-party client, back to these URIs. */
    webRedirectUris: string[] = [],
  ) {
    this.records = new Collection(store, 'clients', clientSchema);
    this.switches = new Collection(store, 'switches', clientSwitchSchema);
    this.configured = new Map(configured.map((c) => [c.client_id, c]));
    if (webRedirectUris.length) {
      this.configured.set(WEB_CLIENT_ID, {
        client_id: WEB_CLIENT_ID,
        client_name: 'Keygate',
        redirect_uris: webRedirectUris,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        client_id_issued_at: 0,
        source: 'builtin',
      });
    }
  }

  /**
   * The client, from (in order) the built-in extension client, the
   * configuration, a Client ID Metadata Document when the id is its URL, or
   * dynamic registration. A metadata document that cannot be used throws
   * InvalidClientError saying why.
   */
  async find(clientId: string): Promise<Client | undefined> {
    if (clientId === EXTENSION_CLIENT_ID) return extensionClient;
    if (clientId === CLI_CLIENT_ID) return cliClient;
    const configured = this.configured.get(clientId);
    if (configured) return configured;
    if (this.documents?.handles(clientId)) return this.documents.resolve(clientId);
    return this.records.find(clientId);
  }

  /** Store a client; `expiresAt` (epoch seconds): a dynamic one nobody has used yet is deleted then. */
  async register(client: z.infer<typeof clientSchema>, expiresAt?: number): Promise<void> {
    await this.records.upsert(client.client_id, client, expiresAt);
  }

  /** How many dynamically registered clients the store holds (expired ones are gone): a count by index, nothing read back. */
  countDynamic(): Promise<number> {
    return this.records.countBy('source', 'dynamic');
  }

  /**
   * A code or token is about to be issued to this client. A dynamic client's
   * first use ends the expiry it was registered with: one store write in its
   * life, none after.
   */
  async used(client: Client): Promise<void> {
    if (client.source !== 'dynamic' || client.first_used_at !== undefined) return;
    await this.records.update(client.client_id, (record) => record && { ...record, first_used_at: Math.floor(Date.now() / 1000) }, null);
  }

  /** Break-glass: an admin disabled this client (its tokens stop working, it gets no new ones). */
  async disabled(clientId: string): Promise<boolean> {
    return (await this.switches.find(`client:${clientId}`))?.disabled === true;
  }

  /** The clients that are not in the store: the built-in ones and those of the configuration file. */
  staticClients(): Client[] {
    return [extensionClient, cliClient, ...this.configured.values()];
  }

  /** Client ID Metadata Document clients fetched recently (in this process's cache). */
  metadataDocumentClients(): Client[] {
    return this.documents?.cached() ?? [];
  }

  /** The client as far as it is known here, without fetching a metadata document (for the admin API). */
  async known(clientId: string): Promise<Client | undefined> {
    const fixed = this.staticClients().find((c) => c.client_id === clientId);
    if (fixed) return fixed;
    if (this.documents?.handles(clientId)) return this.metadataDocumentClients().find((c) => c.client_id === clientId);
    return this.records.find(clientId);
  }
}

export function acceptsRedirectUri(client: Client, presented: string): boolean {
  return client.redirect_uris.some((registered) => redirectUriMatches(registered, presented)) || (client.acceptsRedirect?.(presented) ?? false);
}

/**
 * RFC 6749 §2.3.1 / OAuth 2.1 §2.4.1: authenticate the client at the token
 * endpoint with the method it registered, and only that method.
 */
export async function authenticateClient(
  clients: ClientRegistry,
  input: { authorization?: string | undefined; client_id?: string | undefined; client_secret?: string | undefined },
): Promise<Client> {
  let clientId = input.client_id;
  let secret: string | undefined;
  let method: TokenEndpointAuthMethod = 'none';
  if (input.authorization?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(input.authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidClientError('malformed Basic credentials');
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    const basicId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    if (clientId !== undefined && clientId !== basicId) throw new InvalidClientError('client_id in the body differs from the Basic credentials');
    clientId = basicId;
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    method = 'client_secret_basic';
    if (input.client_secret !== undefined) throw new InvalidClientError('use one client authentication method, not two');
  } else if (input.client_secret !== undefined) {
    secret = input.client_secret;
    method = 'client_secret_post';
  }
  if (!clientId) throw new InvalidClientError('client_id is missing');
  const client = await clients.find(clientId);
  if (!client) throw new InvalidClientError('unknown client');
  if (client.token_endpoint_auth_method !== method) {
    throw new InvalidClientError(`this client authenticates with ${client.token_endpoint_auth_method}, not ${method}`);
  }
  if (method !== 'none') {
    const expected = Buffer.from(client.client_secret_hash ?? '', 'base64url');
    const actual = Buffer.from(hashSecret(secret ?? ''), 'base64url');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw new InvalidClientError('client authentication failed');
  }
  // Break-glass (POST /api/v1/admin/clients/{id}/disable): no new tokens, no refresh, no introspection.
  if (await clients.disabled(client.client_id)) throw new InvalidClientError('this client is disabled by an admin');
  return client;
}

/** `oauth_server.clients` as clients; secrets are read from the environment and kept only hashed. */
export function configuredClients(clients: Config['oauth_server']['clients'], env: NodeJS.ProcessEnv): Client[] {
  return clients.map((c, i) => {
    const secret = c.client_secret_env === undefined ? undefined : env[c.client_secret_env];
    if (c.client_secret_env !== undefined && !secret) throw new Error(`oauth_server.clients[${i}].client_secret_env: environment variable ${c.client_secret_env} is not set`);
    for (const uri of c.redirect_uris) {
      const problem = redirectUriProblemFor(uri);
      if (problem) throw new Error(`oauth_server.clients[${i}].redirect_uris: ${problem}`);
    }
    return {
      client_id: c.client_id,
      client_name: c.name,
      redirect_uris: c.redirect_uris,
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? (secret ? 'client_secret_basic' : 'none'),
      client_secret_hash: secret === undefined ? undefined : hashSecret(secret),
      // An admin's token_exchange block is the permission, and implies the grant type.
      grant_types: c.token_exchange ? [...new Set([...c.grant_types, TOKEN_EXCHANGE_GRANT])] : c.grant_types,
      response_types: ['code'],
      scope: c.scopes?.join(' '),
      client_id_issued_at: 0,
      source: 'config',
      ...(c.resource_server && { resource_server: true }),
      ...(c.token_exchange && { tokenExchange: { resources: c.token_exchange.resources, users: c.token_exchange.users, lifetime: c.token_exchange.token_lifetime } }),
    };
  });
}
