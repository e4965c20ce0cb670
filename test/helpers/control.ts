import { startFixture, type Fixture } from './fixture.ts';

// For the admin API, break-glass, offboarding and audit tests: the standard
// fixture (demo upstream, alice, bob, gateways "team" and "open" sharing the
// service account "svc") plus two admins, and small HTTP helpers.

export const CAROL = { username: 'carol', password: 'carol admin pass phrase' };
export const DAVE = { username: 'dave', password: 'dave admin pass phrase' };

export function startControlFixture(overrides: (config: Record<string, any>) => void = () => {}, env: NodeJS.ProcessEnv = {}): Promise<Fixture> {
  return startFixture(
    (config) => {
      // Here bob calls tools too (the standard fixture keeps him read-only, for the scope tests).
      for (const user of config.oauth_server.builtin.users) if (user.username === 'bob') user.scopes = ['mcp:read', 'mcp:write'];
      config.oauth_server.builtin.users.push(
        { username: CAROL.username, password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] },
        { username: DAVE.username, password_env: 'DAVE_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] },
      );
      overrides(config);
    },
    { CAROL_PASSWORD: CAROL.password, DAVE_PASSWORD: DAVE.password, ...env },
  );
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** JSON calls to /api/v1 with a bearer token (or none). */
export function apiClient(base: string, token: string | undefined) {
  async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('application/json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
  return {
    get: <T = any>(path: string) => call<T>('GET', path),
    post: <T = any>(path: string, body?: unknown) => call<T>('POST', path, body),
    put: <T = any>(path: string, body?: unknown) => call<T>('PUT', path, body),
    delete: <T = any>(path: string) => call<T>('DELETE', path),
    call,
  };
}

const MODERN = { 'mcp-protocol-version': '2026-07-28', accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } };

/** A 2026-07-28 request of `method` through the gateway: its status and the JSON-RPC error's reason, if any. */
export async function callMethod(url: string, token: string | undefined, method: string, params: Record<string, unknown> = {}): Promise<{ status: number; headers: Headers; reason: string | undefined; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...MODERN, 'mcp-method': method, ...(typeof params.name === 'string' && { 'mcp-name': params.name }), ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: meta } }),
  });
  const body = (await res.json()) as { error?: { data?: { reason: string } } };
  return { status: res.status, headers: res.headers, reason: body.error?.data?.reason, body };
}

/** A 2026-07-28 tools/call of the demo's echo through the gateway. */
export async function callEcho(url: string, token: string | undefined, message = 'hi'): Promise<{ status: number; text: string | undefined; reason: string | undefined; message: string | undefined }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'echo', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message }, _meta: meta } }),
  });
  const body = (await res.json()) as { result?: { content: { text: string }[] }; error?: { message: string; data?: { reason: string } } };
  return { status: res.status, text: body.result?.content[0]?.text, reason: body.error?.data?.reason, message: body.error?.message };
}
