import { randomBytes } from 'node:crypto';
import { Client, type ClientOptions, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { AuditEntry } from '../../server/audit/audit.ts';
import { startFeatureUpstream, type FeatureUpstream, type UpstreamEras } from './feature-upstream.ts';
import { ALICE, BOB } from './fixture.ts';
import { signIn } from './oauth.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

// A registry in front of feature upstreams (test/helpers/feature-upstream.ts),
// with the builtin users alice and bob signed in, and real SDK clients of
// either era to talk to it.

export type ClientEra = '2026-07-28' | '2025-11-25' | '2025-06-18';
export const ERAS: ClientEra[] = ['2026-07-28', '2025-11-25', '2025-06-18'];

export interface UpstreamSpec {
  id: string;
  eras: UpstreamEras;
  /** Which Authorization values the upstream accepts (default: any bearer token). */
  accept?: (authorization: string | undefined) => boolean;
  /** Whether it supports resource subscriptions (default true). */
  subscriptions?: boolean;
}

export interface MergedGateway {
  registry: TestRegistry;
  upstreams: Record<string, FeatureUpstream & { key: string }>;
  aliceToken: string;
  bobToken: string;
  close(): Promise<void>;
}

/**
 * Each upstream wants `Authorization: Bearer <its key>` from a shared
 * assignment, or any bearer token from a per-user one (the test asserts which
 * one reached it). `configure` gets the config to add gateways to.
 */
export async function startMergedGateway(specs: UpstreamSpec[], configure: (config: Record<string, any>, upstreams: Record<string, { url: string; key: string }>) => void, extraEnv: Record<string, string> = {}): Promise<MergedGateway> {
  const upstreams: MergedGateway['upstreams'] = {};
  for (const spec of specs) {
    const key = `${spec.id}-${randomBytes(8).toString('hex')}`;
    const up = await startFeatureUpstream({ eras: spec.eras, name: spec.id, requireAuthorization: spec.accept ?? ((value) => value !== undefined && value.startsWith('Bearer ')), ...(spec.subscriptions !== undefined && { subscriptions: spec.subscriptions }) });
    upstreams[spec.id] = Object.assign(up, { key });
  }
  const env: Record<string, string> = { ALICE_PASSWORD: ALICE.password, BOB_PASSWORD: BOB.password, ...extraEnv };
  const config: Record<string, any> = {
    oauth_server: {
      builtin: {
        users: [
          { username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'], email: 'alice@example.com' },
          { username: BOB.username, password_env: 'BOB_PASSWORD', scopes: ['mcp:read', 'mcp:write'] },
        ],
      },
    },
    upstreams: specs.map((s) => ({ id: s.id, url: upstreams[s.id]!.url, credential: { type: 'bearer' } })),
    identities: specs.map((s) => {
      env[`${s.id.toUpperCase().replace(/-/g, '_')}_KEY`] = upstreams[s.id]!.key;
      return { id: `${s.id}-svc`, upstream: s.id, label: `${s.id} service account`, token_env: `${s.id.toUpperCase().replace(/-/g, '_')}_KEY` };
    }),
    gateways: [],
  };
  configure(config, upstreams);
  let registry: TestRegistry;
  try {
    registry = await startRegistry(config, env);
  } catch (err) {
    await Promise.all(Object.values(upstreams).map((u) => u.close()));
    throw err;
  }
  const aliceToken = (await signIn(registry.url, ALICE)).tokens.access_token;
  const bobToken = (await signIn(registry.url, BOB)).tokens.access_token;
  return {
    registry,
    upstreams,
    aliceToken,
    bobToken,
    async close() {
      await registry.close();
      await Promise.all(Object.values(upstreams).map((u) => u.close()));
    },
  };
}

/**
 * Gateway "hub" (name "Hub") over two upstreams, one per protocol era: "old"
 * (2025 only) and "new" (2026-07-28 only), each through its service account.
 */
export async function startEraHub(): Promise<{ g: MergedGateway; hub: string }> {
  const g = await startMergedGateway(
    [
      { id: 'old', eras: 'legacy' },
      { id: 'new', eras: 'modern' },
    ],
    (config) => {
      config.gateways.push({
        id: 'hub',
        name: 'Hub',
        visibility: 'private',
        servers: [
          { upstream: 'old', identity: 'shared', shared_identity: 'old-svc' },
          { upstream: 'new', identity: 'shared', shared_identity: 'new-svc' },
        ],
      });
    },
  );
  return { g, hub: `${g.registry.url}/mcp/hub` };
}

export interface ClientSetup {
  token?: string;
  capabilities?: ClientOptions['capabilities'];
  headers?: Record<string, string>;
  configure?: (client: Client) => void;
  options?: Partial<ClientOptions>;
}

/** A real SDK client of the given era, connected. */
export async function connect(url: string, era: ClientEra, setup: ClientSetup = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const options: ClientOptions = {
    capabilities: setup.capabilities ?? {},
    ...(era === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : { supportedProtocolVersions: [era] }),
    ...setup.options,
  };
  const client = new Client({ name: `test-${era}`, version: '1.0.0' }, options);
  setup.configure?.(client);
  const headers = { ...(setup.token && { authorization: `Bearer ${setup.token}` }), ...setup.headers };
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

/** Every audit entry recorded so far (the registry's sink: kept in memory, or a log that can be read back). */
export async function auditEntries(registry: TestRegistry): Promise<AuditEntry[]> {
  const sink = registry.registry.audit as unknown as { entries?: AuditEntry[]; flush?: () => Promise<void>; read?: (filter: object, options: { order: 'asc' }) => AsyncIterable<AuditEntry> };
  if (Array.isArray(sink.entries)) return [...sink.entries];
  await sink.flush!();
  const all: AuditEntry[] = [];
  for await (const entry of sink.read!({}, { order: 'asc' })) all.push(entry);
  return all;
}

/** Wait until a condition holds (notifications arrive asynchronously). */
export async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The JSON-RPC error a call was refused with, as an SDK client throws it: a
 * ProtocolError (an error in the answer; a 2026-07-28 client reads one from an
 * HTTP error's body too), or an SdkHttpError whose body holds it (a 2025
 * session's POST answered with an HTTP error status, as both endpoints answer
 * a refusal), with that status.
 */
export function rpcError(err: unknown): { code: unknown; message: string; data: { step?: string; reason?: string } | undefined; status: number | undefined } {
  const e = err as { code?: unknown; message: string; data?: { status?: number; text?: string; step?: string; reason?: string } };
  if (typeof e.data?.text === 'string') {
    const body = JSON.parse(e.data.text) as { error: { code: unknown; message: string; data?: { step?: string; reason?: string } } };
    return { ...body.error, data: body.error.data, status: e.data.status };
  }
  return { code: e.code, message: e.message, data: e.data, status: undefined };
}

export interface V1Session {
  client: V1Client;
  heard: { toolsChanged: number; logs: string[] };
}

/** A 2025-11-25 session from the SDK v1 client (which many clients in the field run), counting what its streams deliver. */
export async function openV1Session(url: string, token: string): Promise<V1Session> {
  const heard = { toolsChanged: 0, logs: [] as string[] };
  const client = new V1Client({ name: 'v1-client', version: '1.0.0' });
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void heard.toolsChanged++);
  client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => void heard.logs.push(String(n.params.data)));
  await client.connect(new V1Transport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return { client, heard };
}

/** The sessions' standalone streams are open (the gateway has nothing to say yet): a log message `upstream` broadcasts (a server every session lists) reaches each of them. */
export async function standaloneStreamsOpen(upstream: FeatureUpstream, sessions: V1Session[]): Promise<void> {
  for (let round = 0; ; round++) {
    const marker = `ready ${round}`;
    await upstream.broadcastLog(marker);
    try {
      await eventually(() => sessions.every((s) => s.heard.logs.includes(marker)), 'the standalone streams', 250);
      return;
    } catch (err) {
      if (round >= 40) throw err;
    }
  }
}
