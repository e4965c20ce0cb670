import { z } from 'zod';
import { InvalidClientError } from '../http/errors.ts';
import type { Logger } from '../log.ts';
import { type FetchLike, OutboundError } from '../net/outbound.ts';
import type { Client } from './clients.ts';
import { LOOPBACK_HOSTS, redirectUriProblem } from './redirect-uri.ts';

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
// the registration the 2026-07-28 MCP revision prefers): the client_id is an
// https URL; the registry fetches the JSON document there, checks that its
// client_id is that very URL, and caches it. The client names itself, so the
// consent page shows where the browser returns.

const MIN_TTL = 60;
const MAX_TTL = 24 * 3600;
const DEFAULT_TTL = 3600;
const FAILURE_TTL = 30;
const MAX_CACHED = 1000;

// Documents from other servers are parsed leniently (unknown members are
// ignored), but what we use is checked strictly.
const documentSchema = z.looseObject({
  client_id: z.string(),
  client_name: z.string().max(200).optional(),
  client_uri: z.string().optional(),
  logo_uri: z.string().optional(),
  redirect_uris: z.array(z.string()).min(1, 'redirect_uris needs at least one URI'),
  grant_types: z.array(z.string()).default(['authorization_code']),
  response_types: z.array(z.string()).default(['code']),
  token_endpoint_auth_method: z.string().default('none'),
  scope: z.string().optional(),
  application_type: z.enum(['web', 'native']).optional(),
});

/** Does this client_id name a metadata document (rather than a registered id)? */
export function isMetadataDocumentUrl(clientId: string, allowLoopbackHttp: boolean): boolean {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return false;
  }
  // An https URL with a path (the draft's §3); http only for a loopback host
  // when outbound.allow_loopback is on (development and tests).
  const loopback = LOOPBACK_HOSTS.has(url.hostname);
  const schemeOk = url.protocol === 'https:' || (allowLoopbackHttp && loopback && url.protocol === 'http:');
  return schemeOk && url.pathname.length > 1 && !url.hash && !url.username && !url.password;
}

function cacheSeconds(cacheControl: string | null): number {
  const match = /max-age=(\d+)/i.exec(cacheControl ?? '');
  if (/no-store|no-cache/i.test(cacheControl ?? '')) return MIN_TTL;
  return Math.min(MAX_TTL, Math.max(MIN_TTL, match ? Number(match[1]) : DEFAULT_TTL));
}

export class ClientMetadataDocuments {
  private readonly cache = new Map<string, { client?: Client; error?: string; until: number }>();
  private readonly inflight = new Map<string, Promise<Client>>();

  constructor(
    private readonly fetch: FetchLike,
    private readonly options: { allowLoopbackHttp: boolean; scopesSupported: string[]; log: Logger },
  ) {}

  /** The clients whose documents are cached now (for the admin API's list). */
  cached(): Client[] {
    const now = Date.now() / 1000;
    return [...this.cache.values()].filter((e) => e.client && e.until > now).map((e) => e.client!);
  }

  handles(clientId: string): boolean {
    return isMetadataDocumentUrl(clientId, this.options.allowLoopbackHttp);
  }

  /** The client described at `clientId`, fetched or from the cache. Throws InvalidClientError with the reason. */
  async resolve(clientId: string): Promise<Client> {
    const now = Date.now() / 1000;
    const cached = this.cache.get(clientId);
    if (cached && cached.until > now) {
      if (cached.client) return cached.client;
      throw new InvalidClientError(cached.error!);
    }
    let pending = this.inflight.get(clientId);
    if (!pending) {
      pending = this.load(clientId).finally(() => this.inflight.delete(clientId));
      this.inflight.set(clientId, pending);
    }
    return pending;
  }

  private remember(clientId: string, entry: { client?: Client; error?: string; until: number }): void {
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(clientId, entry);
  }

  private async load(clientId: string): Promise<Client> {
    const now = Date.now() / 1000;
    try {
      const { client, ttl } = await this.fetchDocument(clientId);
      this.remember(clientId, { client, until: now + ttl });
      return client;
    } catch (err) {
      const message = err instanceof InvalidClientError ? err.message : `the client metadata document at ${clientId} could not be fetched (${err instanceof OutboundError ? err.message : (err as Error).message})`;
      this.options.log.warn('client metadata document %s refused: %s', clientId, message);
      this.remember(clientId, { error: message, until: now + FAILURE_TTL });
      throw new InvalidClientError(message);
    }
  }

  private async fetchDocument(clientId: string): Promise<{ client: Client; ttl: number }> {
    const res = await this.fetch(clientId, { headers: { accept: 'application/json' }, redirect: 'manual' });
    if (res.status !== 200) throw new InvalidClientError(`the client metadata document at ${clientId} answered HTTP ${res.status}`);
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new InvalidClientError(`the client metadata document at ${clientId} is not JSON`);
    }
    const parsed = documentSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new InvalidClientError(`the client metadata document at ${clientId} is invalid: ${issue.path.join('.') || 'document'}: ${issue.message}`);
    }
    const doc = parsed.data;
    // §4.1: the document must name itself.
    if (doc.client_id !== clientId) throw new InvalidClientError(`the client metadata document's client_id (${doc.client_id}) is not its URL (${clientId})`);
    // No shared secret can be agreed through a public document.
    if (doc.token_endpoint_auth_method !== 'none') {
      throw new InvalidClientError(`a client metadata document client must use token_endpoint_auth_method none, not ${doc.token_endpoint_auth_method}`);
    }
    for (const uri of doc.redirect_uris) {
      const problem = redirectUriProblem(uri);
      if (problem) throw new InvalidClientError(`the client metadata document has a bad redirect URI: ${problem}`);
    }
    const grants = doc.grant_types.filter((g) => g === 'authorization_code' || g === 'refresh_token');
    const scope = doc.scope?.split(' ').filter((s) => this.options.scopesSupported.includes(s) || s === 'offline_access').join(' ');
    return {
      ttl: cacheSeconds(res.headers.get('cache-control')),
      client: {
        client_id: clientId,
        client_name: doc.client_name,
        redirect_uris: doc.redirect_uris,
        token_endpoint_auth_method: 'none',
        grant_types: grants.includes('authorization_code') ? [...new Set([...grants, 'refresh_token'])] : grants,
        response_types: ['code'],
        scope: scope || undefined,
        application_type: doc.application_type,
        client_id_issued_at: 0,
        source: 'metadata_document',
      },
    };
  }
}
