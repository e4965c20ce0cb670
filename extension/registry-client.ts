import * as z from 'zod/mini';
import { RegistryHttpError } from './errors.ts';
import { fetchRegistry, requestJson, type Fetch } from './http.ts';

export type { Fetch } from './http.ts';

// The registry's self-service API (/api/v1) as the extension uses it. Every
// body is validated with zod (zod/mini: the same zod 4 as the server, a
// fraction of the bundle); documents from another server are parsed
// leniently (unknown fields are dropped, not rejected), and wire names stay
// snake_case until they are mapped here, once, to camelCase.

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

const serverSchema = z.object({
  name: z.string(),
  upstream: z.string(),
  upstream_name: z.optional(z.string()),
  identity: z.string(),
  mcp_url: httpUrl,
});

const gatewaySchema = z.object({
  id: z.string().check(z.minLength(1)),
  name: z.string(),
  description: z.optional(z.string()),
  visibility: z.enum(['public', 'private']),
  mcp_url: httpUrl,
  servers: z.array(serverSchema),
});

const gatewaysSchema = z.object({ gateways: z.array(gatewaySchema) });

const meSchema = z.discriminatedUnion('authenticated', [
  z.object({ authenticated: z.literal(false) }),
  z.object({
    authenticated: z.literal(true),
    subject: z.string().check(z.minLength(1)),
    name: z.optional(z.string()),
    email: z.optional(z.string()),
    scopes: z._default(z.array(z.string()), []),
  }),
]);

export interface GatewayServer {
  name: string;
  upstream: string;
  upstreamName: string | undefined;
  identity: string;
  mcpUrl: string;
}

export interface Gateway {
  id: string;
  name: string;
  description: string | undefined;
  visibility: 'public' | 'private';
  mcpUrl: string;
  servers: GatewayServer[];
}

/** A health check gives up after this long: a registry that slow is as good as down. */
export const HEALTH_TIMEOUT_MS = 5_000;

export interface Health {
  /** Changes whenever the registry restarts (Keygate-Epoch); undefined from a registry that does not say. */
  epoch: string | undefined;
}

export type Me = { authenticated: false } | { authenticated: true; subject: string; name?: string | undefined; email?: string | undefined; scopes: string[] };

export class RegistryClient {
  constructor(
    /** Canonical base URL (see parseRegistryUrl). */
    readonly registry: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {}

  /** GET /api/v1/gateways: the gateways the caller may reach (anonymous callers: the public ones). */
  async gateways(accessToken?: string): Promise<Gateway[]> {
    const body = await this.get('/api/v1/gateways', gatewaysSchema, accessToken);
    return body.gateways.map((gw) => ({
      id: gw.id,
      name: gw.name,
      description: gw.description,
      visibility: gw.visibility,
      mcpUrl: gw.mcp_url,
      servers: gw.servers.map((s) => ({ name: s.name, upstream: s.upstream, upstreamName: s.upstream_name, identity: s.identity, mcpUrl: s.mcp_url })),
    }));
  }

  /**
   * GET /healthz: the registry answers and can read its store. Throws
   * RegistryUnreachableError when it does not answer, RegistryTlsError when
   * its certificate is not trusted, RegistryHttpError when it answers
   * anything but 200.
   */
  async health(): Promise<Health> {
    const res = await fetchRegistry(this.fetchImpl, this.registry, '/healthz', { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    await res.body?.cancel();
    if (res.status !== 200) throw new RegistryHttpError(res.status, undefined, `${this.registry} is not healthy (GET /healthz: HTTP ${res.status})`);
    return { epoch: res.headers.get('keygate-epoch') ?? undefined };
  }

  /** GET /api/v1/me: who the token belongs to. */
  async me(accessToken: string): Promise<Me> {
    return this.get('/api/v1/me', meSchema, accessToken);
  }

  private get<S extends z.ZodMiniType>(path: string, schema: S, accessToken: string | undefined): Promise<z.infer<S>> {
    return requestJson(this.fetchImpl, this.registry, { path, accessToken }, schema);
  }
}
