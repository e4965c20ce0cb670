import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { apiClient } from '../helpers/control.ts';
import { type FeatureUpstream, startFeatureUpstream } from '../helpers/feature-upstream.ts';
import { signIn, signInAdmin, tokenRequest } from '../helpers/oauth.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { startWiretap, tappedMessages, type Wiretap } from '../helpers/wiretap.ts';

// Issue 10, "nothing a client can tell apart": every refusal the gateway can
// give answers identically on the raw endpoint /mcp/{gateway}/alpha and on
// the merged endpoint /mcp/{gateway} of the same gateway (two servers, the
// call addressed as alpha__<tool>), in both protocol eras: a stateless
// 2026-07-28 request, and a request on an open 2025 session. What a client
// sees is compared: the HTTP status, the JSON-RPC error's code, data.step and
// data.reason, the id echoed, the WWW-Authenticate challenge (its error and
// scope), and whether the call reached an upstream (a wiretap in front of
// each). Per-call refusals (a tool the filter leaves out, a tool a policy
// denies) are HTTP 200 with the JSON-RPC error; every other refusal is its
// HTTP status, on both endpoints. Each test also holds both answers to the
// expected status, code, step and reason: two equally wrong answers fail.
// An upstream's own failures are met twice: on the merged endpoint's first
// call to it, and after a call went through (its fast paths answer).
//
// Not in the table, because they are not the same question on the two
// endpoints: a server the gateway does not have is a URL that does not exist
// on the raw endpoint (404 unknown_server, gateway.test.ts) but a tool name no
// server offers on the merged one, answered as one MCP server answers an
// unknown tool (-32602, merged-gateway.test.ts); and a 2025 request without
// a session id is the upstream's to judge on the raw endpoint (a stateless
// 2025 server serves it), while the merged endpoint, being the server, asks
// for initialize first (400 session_required).

type Era = '2026-07-28' | '2025-11-25';
const MODERN: Era = '2026-07-28';
const LEGACY: Era = '2025-11-25';
const ERAS: readonly Era[] = [MODERN, LEGACY];

const ACCEPT = 'application/json, text/event-stream';
const ENVELOPE = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'table', version: '1' } };
const REQUEST_ID = 7;

// JSON-RPC codes, as the gateway names them (server/catalog/failure.ts CODES).
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const SERVER_ERROR = -32000;
const UNAUTHORIZED = -32001;
const FORBIDDEN = -32003;
const NOT_FOUND = -32004;
const UPSTREAM = -32010;
const CREDENTIAL = -32011;
const HEADER_MISMATCH = -32020;

const USERS = {
  alice: { username: 'alice', password: 'alice pass phrase for the table' },
  erin: { username: 'erin', password: 'erin pass phrase for the table' },
  mallory: { username: 'mallory', password: 'mallory pass phrase for the table' },
  carol: { username: 'carol', password: 'carol admin pass phrase for the table' },
};

const KEY_A = `alpha-${randomBytes(8).toString('hex')}`;
const KEY_B = `beta-${randomBytes(8).toString('hex')}`;
const ROBOT_SECRET = randomBytes(16).toString('hex');

let alpha: FeatureUpstream;
let beta: FeatureUpstream;
let tapA: Wiretap;
let tapB: Wiretap;
let tapSlow: Wiretap;
let registry: TestRegistry;
let base: string;
let admin: ReturnType<typeof apiClient>;
let aliceToken: string;
let aliceIdentity: string;
/** Set by a row: the alpha upstream refuses every credential (401). */
let alphaRefuses = false;

before(async () => {
  alpha = await startFeatureUpstream({ eras: 'both', name: 'alpha', requireAuthorization: (v) => !alphaRefuses && v === `Bearer ${KEY_A}` });
  beta = await startFeatureUpstream({ eras: 'both', name: 'beta', requireAuthorization: (v) => v === `Bearer ${KEY_B}` });
  tapA = await startWiretap();
  tapB = await startWiretap();
  tapSlow = await startWiretap();
  const alphaUrl = tapA.urlFor(alpha.url);
  const betaServer = { upstream: 'beta', identity: 'shared', shared_identity: 'beta-svc' };
  const shared = { upstream: 'alpha', identity: 'shared', shared_identity: 'alpha-svc' };
  registry = await startRegistry(
    {
      oauth_server: {
        builtin: {
          users: [
            ...['alice', 'erin', 'mallory'].map((u) => ({ username: u, password_env: `${u.toUpperCase()}_PASSWORD`, scopes: ['mcp:read', 'mcp:write'] })),
            { username: 'carol', password_env: 'CAROL_PASSWORD', scopes: ['mcp:read', 'mcp:write', 'mcp:admin'] },
          ],
        },
        // An agent acting as itself (client credentials).
        clients: [{ client_id: 'robot', name: 'Robot', client_secret_env: 'ROBOT_SECRET', grant_types: ['client_credentials'], scopes: ['mcp:read', 'mcp:write'] }],
      },
      upstreams: [
        { id: 'alpha', url: alphaUrl, credential: { type: 'bearer' } },
        // The same upstream through its own tap, waited for one second only (upstream_timeout).
        { id: 'slow', url: tapSlow.urlFor(alpha.url), credential: { type: 'bearer' }, timeout: 1 },
        // The same upstream, its key kept by the client and sent with each request (storage: client).
        { id: 'fields', url: alphaUrl, credential: { type: 'fields', fields: [{ name: 'api_key', label: 'API key', secret: true }], inject: { header: 'Authorization', value: 'Bearer {api_key}' } } },
        { id: 'beta', url: tapB.urlFor(beta.url), credential: { type: 'bearer' } },
      ],
      identities: [
        { id: 'alpha-svc', upstream: 'alpha', token_env: 'KEY_A' },
        { id: 'slow-svc', upstream: 'slow', token_env: 'KEY_A' },
        { id: 'beta-svc', upstream: 'beta', token_env: 'KEY_B' },
      ],
      // Each gateway: its server "alpha" (the one refused) and "beta" beside it, so /mcp/{gateway} is the merged endpoint.
      gateways: [
        { id: 'hub', members: { users: ['alice', 'erin'] }, servers: [shared, betaServer] },
        { id: 'filtered', servers: [{ ...shared, tools: { deny: ['echo'] } }, betaServer] },
        { id: 'policed', servers: [{ ...shared, policies: [{ action: 'deny', tools: ['echo'], reason: 'echo is not for anyone here' }] }, betaServer] },
        { id: 'personal', servers: [{ upstream: 'alpha', identity: 'per_user' }, betaServer] },
        { id: 'keys', servers: [{ upstream: 'fields', name: 'alpha', identity: 'per_user', storage: 'client' }, betaServer] },
        { id: 'slow', servers: [{ upstream: 'slow', name: 'alpha', identity: 'shared', shared_identity: 'slow-svc' }, betaServer] },
        { id: 'lobby', visibility: 'public', servers: [{ upstream: 'alpha', identity: 'per_user' }, betaServer] },
      ],
    },
    { ALICE_PASSWORD: USERS.alice.password, ERIN_PASSWORD: USERS.erin.password, MALLORY_PASSWORD: USERS.mallory.password, CAROL_PASSWORD: USERS.carol.password, KEY_A, KEY_B, ROBOT_SECRET },
  );
  base = registry.url;
  admin = apiClient(base, (await signInAdmin(base, USERS.carol)).tokens.access_token);
  aliceToken = (await signIn(base, USERS.alice)).tokens.access_token;
  // Alice connects her own alpha key for the per-user server, as she would from the sidebar.
  const made = await apiClient(base, aliceToken).post('/me/identities', { upstream: 'alpha', label: 'alice key', token: KEY_A, select: { gateway: 'personal', server: 'alpha' } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  aliceIdentity = made.body.id;
});

after(async () => {
  await registry?.close();
  await Promise.all([tapA?.close(), tapB?.close(), tapSlow?.close(), alpha?.close(), beta?.close()]);
});

// ---- the table ----

/** Who sends the refused request (`token`), who opened the 2025 session it is sent on (`opener`, default the same). */
interface Caller {
  token: string | undefined;
  opener?: string;
  /** Headers the session is opened with (storage: client credentials). */
  openHeaders?: Record<string, string>;
  clientId?: string;
}

interface Expected {
  status: number;
  code: number;
  step: string;
  reason: string;
  /** The JSON-RPC id echoed (default: the request's). */
  id?: number | null;
  /** WWW-Authenticate: absent (default), present without an error (''), or its error. */
  challenge?: string;
  /** Whether anything of the request reached an upstream (default false); null: not compared (the upstream's own failures). */
  forwarded?: boolean | null;
}

interface Row {
  name: string;
  eras?: readonly Era[];
  gateway?: string;
  server?: string;
  caller?: () => Promise<Caller>;
  /** Make one call that goes through on each endpoint first (the merged endpoint's fast paths serve a warm route). */
  warm?: boolean;
  /** After the 2025 sessions are open: flip what the row is about; returns how to flip it back. */
  setup?: (caller: Caller) => Promise<(() => Promise<void>) | void>;
  request?: {
    method?: string;
    /** Headers added to (or, undefined, removed from) the request; `name` is the tool name the endpoint knows. */
    headers?: (name: string) => Record<string, string | undefined>;
    body?: (message: Record<string, unknown>) => string;
    /** A session id to send instead of opening one. */
    session?: string;
    /** The server whose endpoint the raw session is opened on (default the row's). */
    sessionServer?: string;
  };
  expect: Expected;
}

const alice = async (): Promise<Caller> => ({ token: aliceToken });
const freshAlice = async (): Promise<Caller> => {
  const s = await signIn(base, USERS.alice);
  return { token: s.tokens.access_token, clientId: s.clientId };
};
const flip = (path: string) => async () => {
  const off = await admin.post(`${path}/disable`, { reason: 'refusal table' });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  return async () => void assert.equal((await admin.post(`${path}/enable`)).status, 200);
};
const TOO_DEEP = 200;

const ROWS: Row[] = [
  {
    name: 'a request from an origin that is not allowed',
    request: { headers: () => ({ origin: 'https://evil.example' }) },
    expect: { status: 403, code: FORBIDDEN, step: 'route', reason: 'origin_not_allowed' },
  },
  {
    name: 'a method the endpoint does not serve (PUT)',
    request: { method: 'PUT' },
    expect: { status: 405, code: INVALID_REQUEST, step: 'route', reason: 'method_not_allowed', id: null },
  },
  {
    name: 'no access token on a private gateway',
    caller: async () => ({ token: undefined, opener: aliceToken }),
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'authorization_required', challenge: '' },
  },
  {
    name: 'a malformed access token',
    caller: async () => ({ token: 'not-a-token', opener: aliceToken }),
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'invalid_token', challenge: 'invalid_token' },
  },
  {
    name: 'an access token revoked (RFC 7009)',
    caller: freshAlice,
    setup: async (c) => {
      const res = await fetch(`${base}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ token: c.token!, client_id: c.clientId! }) });
      assert.equal(res.status, 200);
    },
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'token_revoked', challenge: 'invalid_token' },
  },
  {
    name: 'an access token issued for another resource (RFC 8707)',
    caller: async () => ({ token: (await signIn(base, USERS.alice, { resource: `${base}/mcp/filtered` })).tokens.access_token, opener: aliceToken }),
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'invalid_token', challenge: 'invalid_token' },
  },
  {
    name: 'a gateway that does not exist',
    gateway: 'nowhere',
    request: { session: 'a-session-of-another-gateway' },
    expect: { status: 404, code: NOT_FOUND, step: 'gateway', reason: 'unknown_gateway' },
  },
  {
    name: 'a gateway disabled by an admin (break-glass)',
    setup: () => flip('/admin/gateways/hub')(),
    expect: { status: 403, code: FORBIDDEN, step: 'gateway', reason: 'gateway_disabled' },
  },
  {
    name: 'a caller who is not a member of the gateway',
    caller: async () => ({ token: (await signIn(base, USERS.mallory)).tokens.access_token, opener: aliceToken }),
    expect: { status: 403, code: FORBIDDEN, step: 'gateway', reason: 'not_a_member' },
  },
  {
    name: "a client's connection to the gateway disabled by an admin",
    caller: freshAlice,
    setup: async (c) => {
      // A connection is learnt from the calls it made: one call first.
      const ok = await send(`${base}/mcp/hub/alpha`, MODERN, 'echo', undefined, { token: c.token }, {});
      assert.equal(ok.status, 200);
      const id = Buffer.from(`alice\nhub\n${c.clientId}`).toString('base64url');
      for (let tries = 0; (await admin.get(`/admin/connections/${id}`)).status !== 200; tries++) {
        assert.ok(tries < 400, 'the connection is listed');
        await new Promise((r) => setTimeout(r, 25));
      }
      return flip(`/admin/connections/${id}`)();
    },
    expect: { status: 403, code: FORBIDDEN, step: 'gateway', reason: 'connection_disabled' },
  },
  {
    name: 'a user deactivated by an admin',
    caller: async () => ({ token: (await signIn(base, USERS.erin)).tokens.access_token }),
    // Deactivating ends the user's grants: the token is refused as revoked, naming why.
    setup: () => flip('/admin/users/erin')(),
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'user_disabled', challenge: 'invalid_token' },
  },
  {
    name: 'a client disabled by an admin',
    caller: freshAlice,
    // Disabling ends the client's grants: its token is refused as revoked, naming why.
    setup: (c) => flip(`/admin/clients/${c.clientId}`)(),
    expect: { status: 401, code: UNAUTHORIZED, step: 'inbound', reason: 'client_disabled', challenge: 'invalid_token' },
  },
  {
    name: 'a tools/call with a token granted only mcp:read',
    caller: async () => ({ token: (await signIn(base, USERS.alice, { scope: 'mcp:read' })).tokens.access_token }),
    expect: { status: 403, code: FORBIDDEN, step: 'scope', reason: 'insufficient_scope', challenge: 'insufficient_scope' },
  },
  {
    name: 'an upstream disabled by an admin',
    setup: () => flip('/admin/upstreams/alpha')(),
    expect: { status: 403, code: FORBIDDEN, step: 'assignment', reason: 'upstream_disabled' },
  },
  {
    name: "a tool the assignment's tool filter leaves out",
    gateway: 'filtered',
    expect: { status: 200, code: FORBIDDEN, step: 'assignment', reason: 'tool_not_allowed' },
  },
  {
    name: 'a tool a policy denies the caller',
    gateway: 'policed',
    expect: { status: 200, code: FORBIDDEN, step: 'assignment', reason: 'policy_denied' },
  },
  {
    name: 'a shared identity disabled by an admin',
    setup: () => flip('/admin/identities/alpha-svc')(),
    expect: { status: 403, code: FORBIDDEN, step: 'vault', reason: 'identity_disabled' },
  },
  {
    name: 'a per-user identity disabled by an admin, called by its owner',
    gateway: 'personal',
    setup: () => flip(`/admin/identities/${aliceIdentity}`)(),
    expect: { status: 403, code: FORBIDDEN, step: 'vault', reason: 'identity_disabled' },
  },
  {
    name: 'anonymous on the per-user server of a public gateway',
    // (A 2025 session is its opener's: an anonymous request on it is another question.)
    eras: [MODERN],
    gateway: 'lobby',
    caller: async () => ({ token: undefined }),
    expect: { status: 401, code: CREDENTIAL, step: 'vault', reason: 'sign_in_required', challenge: '' },
  },
  {
    name: 'a client acting as itself (client credentials) on a per-user server',
    eras: [MODERN],
    gateway: 'personal',
    caller: async () => {
      const res = await tokenRequest(base, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`robot:${ROBOT_SECRET}`).toString('base64')}` });
      assert.equal(res.status, 200);
      return { token: ((await res.json()) as { access_token: string }).access_token };
    },
    expect: { status: 403, code: FORBIDDEN, step: 'vault', reason: 'agent_without_user' },
  },
  {
    name: 'a credential value no header can carry (storage: client)',
    gateway: 'keys',
    caller: async () => ({ token: aliceToken, openHeaders: { 'x-keygate-credentials': clientCredentials(KEY_A) } }),
    request: { headers: () => ({ 'x-keygate-credentials': clientCredentials('sk-€-never-echoed') }) },
    expect: { status: 400, code: CREDENTIAL, step: 'vault', reason: 'bad_credential' },
  },
  {
    name: 'a body larger than the gateway reads (413)',
    request: { body: (m) => JSON.stringify({ ...m, params: { ...(m.params as object), arguments: { message: 'x'.repeat(4 * 1024 * 1024 + 1) } } }) },
    expect: { status: 413, code: INVALID_REQUEST, step: 'route', reason: 'body_too_large', id: null },
  },
  {
    name: 'a body nested deeper than the gateway reads',
    request: { body: (m) => JSON.stringify({ ...m, params: { ...(m.params as object), arguments: { message: 'deep', deep: '@' } } }).replace('"@"', `${'['.repeat(TOO_DEEP)}${']'.repeat(TOO_DEEP)}`) },
    expect: { status: 400, code: PARSE_ERROR, step: 'route', reason: 'body_too_deep', id: null },
  },
  {
    name: 'a body that is not JSON',
    request: { body: (m) => JSON.stringify(m).slice(0, -2) },
    expect: { status: 400, code: PARSE_ERROR, step: 'route', reason: 'parse_error', id: null },
  },
  {
    name: 'Mcp-Name disagreeing with the body',
    eras: [MODERN],
    request: { headers: (name) => ({ 'mcp-name': name.replace(/echo$/, 'add') }) },
    expect: { status: 400, code: HEADER_MISMATCH, step: 'route', reason: 'header_mismatch' },
  },
  {
    name: 'a body that is not application/json (415)',
    request: { headers: () => ({ 'content-type': 'text/plain' }) },
    expect: { status: 415, code: SERVER_ERROR, step: 'route', reason: 'unsupported_media_type' },
  },
  {
    name: 'a session id the gateway does not know',
    eras: [LEGACY],
    request: { session: 'no-such-session' },
    expect: { status: 404, code: NOT_FOUND, step: 'gateway', reason: 'unknown_session' },
  },
  {
    name: "an upstream that cannot be reached, on the gateway's first call to it",
    setup: async () => {
      tapA.outage('unreachable');
      return async () => tapA.outage(undefined);
    },
    expect: { status: 502, code: UPSTREAM, step: 'upstream', reason: 'upstream_unreachable' },
  },
  {
    name: "an upstream that does not answer in time, on the gateway's first call to it",
    gateway: 'slow',
    setup: async () => {
      tapSlow.outage('silent');
      return async () => tapSlow.outage(undefined);
    },
    expect: { status: 504, code: UPSTREAM, step: 'upstream', reason: 'upstream_timeout', forwarded: null },
  },
  {
    name: "an upstream refusing the credential it was sent (401), on the gateway's first call to it",
    setup: async () => {
      alphaRefuses = true;
      return async () => void (alphaRefuses = false);
    },
    expect: { status: 502, code: CREDENTIAL, step: 'upstream', reason: 'upstream_rejected_credential', forwarded: null },
  },
  {
    name: 'an upstream that cannot be reached, after a call went through',
    warm: true,
    setup: async () => {
      tapA.outage('unreachable');
      return async () => tapA.outage(undefined);
    },
    expect: { status: 502, code: UPSTREAM, step: 'upstream', reason: 'upstream_unreachable' },
  },
  {
    name: 'an upstream that does not answer in time, after a call went through',
    warm: true,
    gateway: 'slow',
    setup: async () => {
      tapSlow.outage('silent');
      return async () => tapSlow.outage(undefined);
    },
    expect: { status: 504, code: UPSTREAM, step: 'upstream', reason: 'upstream_timeout', forwarded: null },
  },
  {
    name: 'an upstream refusing the credential it was sent (401), after a call went through',
    warm: true,
    setup: async () => {
      alphaRefuses = true;
      return async () => void (alphaRefuses = false);
    },
    expect: { status: 502, code: CREDENTIAL, step: 'upstream', reason: 'upstream_rejected_credential', forwarded: null },
  },
];

// ---- one test per row and era ----

for (const row of ROWS) {
  for (const era of row.eras ?? ERAS) {
    // (A bound so that an answer that never comes fails the test instead of hanging the suite.)
    test(`${row.name} (${era}): the same answer on /mcp/{gateway}/{server} and /mcp/{gateway}`, { timeout: 30_000 }, async () => {
      const gateway = row.gateway ?? 'hub';
      const server = row.server ?? 'alpha';
      // The same call: `echo` on the server's own endpoint, `<server>__echo` on the gateway's.
      const raw = { url: `${base}/mcp/${gateway}/${server}`, name: 'echo' };
      const merged = { url: `${base}/mcp/${gateway}`, name: `${server}__echo` };
      const caller = await (row.caller ?? alice)();
      let sessions: (string | undefined)[] = [undefined, undefined];
      if (era === LEGACY) {
        const opener = caller.opener ?? caller.token!;
        const rawSessionUrl = `${base}/mcp/${gateway}/${row.request?.sessionServer ?? server}`;
        sessions = row.request?.session !== undefined ? [row.request.session, row.request.session] : [await openSession(rawSessionUrl, opener, caller.openHeaders), await openSession(merged.url, opener, caller.openHeaders)];
      }
      if (row.warm) {
        for (const [endpoint, i] of [[raw, 0], [merged, 1]] as const) {
          const ok = await send(endpoint.url, era, endpoint.name, sessions[i], caller, {});
          assert.deepEqual([ok.status, ok.code], [200, undefined], `a call through ${endpoint.url} goes through first`);
        }
      }
      const undo = await row.setup?.(caller);
      let answers: Answer[];
      try {
        answers = [await send(raw.url, era, raw.name, sessions[0], caller, row.request ?? {}), await send(merged.url, era, merged.name, sessions[1], caller, row.request ?? {})];
      } finally {
        await undo?.();
      }
      const compared = row.expect.forwarded !== null;
      const [rawAnswer, mergedAnswer] = answers.map((a) => ({ ...a, forwarded: compared ? a.forwarded : undefined }));
      assert.deepEqual(mergedAnswer, rawAnswer, `the merged endpoint answers as the raw one\n raw:    ${JSON.stringify(rawAnswer)}\n merged: ${JSON.stringify(mergedAnswer)}`);
      const want = row.expect;
      for (const [endpoint, a] of [['raw', rawAnswer!], ['merged', mergedAnswer!]] as const) {
        assert.deepEqual(
          { status: a.status, code: a.code, step: a.step, reason: a.reason, id: a.id, challenge: a.challenge === null ? null : a.challenge.error, forwarded: a.forwarded },
          { status: want.status, code: want.code, step: want.step, reason: want.reason, id: want.id === undefined ? REQUEST_ID : want.id, challenge: want.challenge ?? null, forwarded: compared ? (want.forwarded ?? false) : undefined },
          `${endpoint}: ${JSON.stringify(a)}`,
        );
      }
    });
  }
}

// ---- a client's side of the wire ----

/** What a client sees of a refusal. */
interface Answer {
  status: number;
  id: unknown;
  code: unknown;
  step: unknown;
  reason: unknown;
  /** WWW-Authenticate: null when absent; its error ('' when none) and scope. */
  challenge: { error: string; scope: string | undefined } | null;
  /** Did anything of the request reach an upstream while it was answered? */
  forwarded: boolean | undefined;
}

function clientCredentials(apiKey: string): string {
  // X-Keygate-Credentials: base64url(JSON {"<server>": {"<field>": "<value>"}}), as the extension sends it.
  return Buffer.from(JSON.stringify({ alpha: { api_key: apiKey } })).toString('base64url');
}

/** The gateway's own handshakes and cancellations upstream: not the client's request. */
const GATEWAY_OWN = new Set(['initialize', 'notifications/initialized', 'server/discover', 'notifications/cancelled']);
/** POSTs that reached an upstream carrying something of a client's (a body that is not JSON counts). */
const carriedSeen = () => [tapA, tapB, tapSlow].reduce((n, tap) => n + tap.seen.filter((r) => r.method === 'POST' && !tappedMessages(r).every((m) => GATEWAY_OWN.has(m?.method))).length, 0);

/** The JSON-RPC response in a body: JSON, or the message of an SSE stream that answers a request. */
function responseIn(contentType: string, text: string): Record<string, any> | undefined {
  if (contentType.startsWith('text/event-stream')) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      try {
        const message = JSON.parse(line.slice(6));
        if (message && ('result' in message || 'error' in message)) return message;
      } catch {
        // not a message
      }
    }
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function send(url: string, era: Era, name: string, session: string | undefined, caller: Caller, request: NonNullable<Row['request']>): Promise<Answer> {
  const message = { jsonrpc: '2.0', id: REQUEST_ID, method: 'tools/call', params: { name, arguments: { message: 'refuse me' }, ...(era === MODERN && { _meta: ENVELOPE }) } };
  const headers: Record<string, string | undefined> = {
    'content-type': 'application/json',
    accept: ACCEPT,
    'mcp-protocol-version': era,
    ...(era === MODERN ? { 'mcp-method': 'tools/call', 'mcp-name': name } : { 'mcp-session-id': session }),
    authorization: caller.token === undefined ? undefined : `Bearer ${caller.token}`,
    ...caller.openHeaders,
    ...request.headers?.(name),
  };
  const before = carriedSeen();
  const res = await fetch(url, {
    method: request.method ?? 'POST',
    headers: Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined)),
    body: request.body ? request.body(message) : JSON.stringify(message),
  });
  const text = await res.text();
  const body = responseIn(res.headers.get('content-type') ?? '', text);
  const challenge = res.headers.get('www-authenticate');
  return {
    status: res.status,
    id: body ? body.id : '(no JSON-RPC response)',
    code: body?.error?.code,
    step: body?.error?.data?.step,
    reason: body?.error?.data?.reason,
    challenge: challenge === null ? null : { error: /error="([^"]*)"/.exec(challenge)?.[1] ?? '', scope: /scope="([^"]*)"/.exec(challenge)?.[1] },
    forwarded: carriedSeen() > before,
  };
}

/** A 2025 session, opened as a client opens it: initialize, then notifications/initialized. */
async function openSession(url: string, token: string, headers: Record<string, string> = {}): Promise<string> {
  const common = { 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${token}`, ...headers };
  const init = await fetch(url, {
    method: 'POST',
    headers: common,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: 'table', version: '1' } } }),
  });
  const text = await init.text();
  assert.equal(init.status, 200, `initialize on ${url}: ${text}`);
  const session = init.headers.get('mcp-session-id');
  assert.ok(session, `initialize on ${url} opened no session`);
  const ack = await fetch(url, { method: 'POST', headers: { ...common, 'mcp-protocol-version': LEGACY, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await ack.text();
  assert.equal(ack.status, 202, `notifications/initialized on ${url}`);
  return session;
}
