import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as oauth from 'oauth4webapi';
import type { z } from 'zod';
import { CLI_CLIENT_ID } from '../oauth/builtin-clients.ts';
import { writeSecretFile } from '../secret-file.ts';
import { DEFAULT_REGISTRY } from './api.ts';

// keygate-registry login [URL] / logout [URL]: an admin signs in through the
// browser, as other CLIs do (OAuth 2.1 authorization code with PKCE S256, a
// loopback redirect on a port of its own, RFC 8252 §7.3), as the registry's
// built-in public client keygate-cli, asking for mcp:admin by name. The tokens
// are kept in a file only its owner can read ($KEYGATE_CREDENTIALS, default
// ~/.config/keygate/credentials.json), one entry per registry; the admin
// commands use it (refreshing the access token when it is about to expire)
// unless KEYGATE_TOKEN is set, which always wins. logout revokes the refresh
// token (RFC 7009) and forgets the entry.

export const ADMIN_SCOPE = 'mcp:read mcp:write mcp:admin';
/** How long login waits for the browser to come back. */
const WAIT_MS = 5 * 60_000;
/** An access token this close to its expiry is refreshed first. */
const REFRESH_MARGIN_S = 60;

/** The credentials file's schema. zod loads only when a file is read: `login --help`, and `logout` without one, start without it. */
async function fileSchema() {
  const { z } = await import('zod');
  const entrySchema = z.object({
    issuer: z.string(),
    token_endpoint: z.string(),
    revocation_endpoint: z.string().optional(),
    access_token: z.string(),
    refresh_token: z.string().optional(),
    /** Epoch seconds. */
    expires_at: z.number(),
    scope: z.string().optional(),
  });
  return z.object({ registries: z.record(z.string(), entrySchema) });
}
type CredentialsFile = z.infer<Awaited<ReturnType<typeof fileSchema>>>;
type Entry = CredentialsFile['registries'][string];

const USAGE = `Usage: keygate-registry login [URL] [--no-browser]
       keygate-registry logout [URL]

  URL            the registry (env KEYGATE_REGISTRY; default ${DEFAULT_REGISTRY})
  --no-browser   print the sign-in address without opening a browser
  -h, --help     this text

login signs an admin in through the browser and keeps the tokens in
$KEYGATE_CREDENTIALS (default ~/.config/keygate/credentials.json), readable only
by you; the admin commands use them unless KEYGATE_TOKEN is set. logout revokes
them at the registry and forgets them.
`;

export interface LoginIo {
  env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Open the sign-in page (default: the desktop's browser; the URL is printed either way). */
  open?(url: string): void;
}

export function credentialsFile(env: NodeJS.ProcessEnv): string {
  return env.KEYGATE_CREDENTIALS ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'keygate', 'credentials.json');
}

async function readCredentials(file: string): Promise<CredentialsFile> {
  if (!existsSync(file)) return { registries: {} };
  const parsed = (await fileSchema()).safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a Keygate credentials file; remove it and run keygate-registry login`);
  return parsed.data;
}

async function saveEntry(file: string, registry: string, entry: Entry | undefined): Promise<void> {
  const all = await readCredentials(file);
  if (entry) all.registries[registry] = entry;
  else delete all.registries[registry];
  if (Object.keys(all.registries).length === 0 && !entry) {
    if (existsSync(file)) rmSync(file);
    return;
  }
  writeSecretFile(file, `${JSON.stringify(all, null, 2)}\n`);
}

const client: oauth.Client = { client_id: CLI_CLIENT_ID };
const noAuth = oauth.None();

/** The registry's authorization server metadata (RFC 8414); a loopback registry may be plain http. */
async function discover(registry: URL): Promise<oauth.AuthorizationServer> {
  const options = registry.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {};
  const response = await oauth.discoveryRequest(registry, { algorithm: 'oauth2', ...options });
  return oauth.processDiscoveryResponse(registry, response);
}

const insecure = (as: oauth.AuthorizationServer) => (as.issuer.startsWith('http:') ? { [oauth.allowInsecureRequests]: true } : {});

function entryOf(as: oauth.AuthorizationServer, tokens: oauth.TokenEndpointResponse, previous?: Entry): Entry {
  return {
    issuer: as.issuer,
    token_endpoint: as.token_endpoint!,
    ...(as.revocation_endpoint && { revocation_endpoint: as.revocation_endpoint }),
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token ?? previous?.refresh_token,
    expires_at: Math.floor(Date.now() / 1000) + (tokens.expires_in ?? 300),
    ...(tokens.scope && { scope: tokens.scope }),
  };
}

function openBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no desktop here: the printed URL is the way
    child.unref();
  } catch {
    // as above
  }
}

const PAGE = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><style>body{font:16px system-ui;margin:3em}</style><h1>${title}</h1><p>${text}</p>`;

/** Wait on the loopback redirect for the authorization response; answers the callback URL's parameters, validated against `state`. */
function awaitCallback(server: Server, as: oauth.AuthorizationServer, state: string): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from the browser within 5 minutes; run keygate-registry login again')), WAIT_MS);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname !== '/callback') return void res.writeHead(404).end();
      const headers = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" };
      try {
        // RFC 9207 iss, the state, and an error answer: oauth4webapi checks them all.
        const params = oauth.validateAuthResponse(as, client, url.searchParams, state);
        res.writeHead(200, headers).end(PAGE('Signed in', 'keygate-registry is signed in. You can close this tab.'));
        clearTimeout(timer);
        resolve(params);
      } catch (err) {
        res.writeHead(400, headers).end(PAGE('Not signed in', 'This answer does not belong to the sign-in keygate-registry started. Run keygate-registry login again.'));
        // A forged or stale callback ends nothing: the real one may still come.
        if (!(err instanceof oauth.AuthorizationResponseError)) return;
        clearTimeout(timer);
        reject(new Error(`the registry refused the sign-in: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`));
      }
    });
  });
}

export async function runLogin(argv: string[], io: LoginIo): Promise<number> {
  let values: { 'no-browser'?: boolean | undefined; help?: boolean | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: { 'no-browser': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }));
  } catch (err) {
    io.stderr(`keygate-registry login: ${(err as Error).message}\nUsage: keygate-registry login [URL] [--no-browser]\n`);
    return 2;
  }
  if (values.help) return (io.stdout(USAGE), 0);
  const registry = registryUrl(positionals[0], io.env);
  if (!registry) return (io.stderr(`keygate-registry login: "${positionals[0]}" is not a URL\n`), 2);
  let as: oauth.AuthorizationServer;
  try {
    as = await discover(registry);
  } catch (err) {
    io.stderr(`keygate-registry login: cannot read the registry's OAuth metadata at ${registry.origin}: ${(err as Error).message}\n`);
    return 1;
  }
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLI_CLIENT_ID, redirect_uri: redirectUri, scope: ADMIN_SCOPE, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) url.searchParams.set(k, v);
    const callback = awaitCallback(server, as, state);
    io.stderr(`Sign in to ${registry.origin} in your browser:\n  ${url.href}\n`);
    if (!values['no-browser']) (io.open ?? openBrowser)(url.href);
    const params = await callback;
    const response = await oauth.authorizationCodeGrantRequest(as, client, noAuth, params, redirectUri, verifier, insecure(as));
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    const file = credentialsFile(io.env);
    await saveEntry(file, registry.origin, entryOf(as, tokens));
    io.stdout(`Signed in to ${registry.origin} (scope: ${tokens.scope ?? ADMIN_SCOPE}); the tokens are in ${file}, readable only by you.\n`);
    return 0;
  } catch (err) {
    io.stderr(`keygate-registry login: ${describe(err)}\n`);
    return 1;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

export async function runLogout(argv: string[], io: LoginIo): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') return (io.stdout(USAGE), 0);
  const registry = registryUrl(argv[0], io.env);
  if (!registry) return (io.stderr(`keygate-registry logout: "${argv[0]}" is not a URL\n`), 2);
  const file = credentialsFile(io.env);
  const entry = (await readCredentials(file)).registries[registry.origin];
  if (!entry) {
    io.stdout(`Not signed in to ${registry.origin}.\n`);
    return 0;
  }
  // RFC 7009: the refresh token (and with it the grant) ends at the registry; the file entry goes either way.
  if (entry.revocation_endpoint && entry.refresh_token) {
    const as = { issuer: entry.issuer, revocation_endpoint: entry.revocation_endpoint } as oauth.AuthorizationServer;
    try {
      await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, noAuth, entry.refresh_token, insecure(as)));
    } catch (err) {
      io.stderr(`keygate-registry logout: the registry could not be told (${describe(err)}); the tokens are forgotten here anyway\n`);
    }
  }
  await saveEntry(file, registry.origin, undefined);
  io.stdout(`Signed out of ${registry.origin}.\n`);
  return 0;
}

/**
 * The access token for the admin commands: KEYGATE_TOKEN when set (it always
 * wins), else the one `login` kept for this registry, refreshed first when it
 * is about to expire. Undefined: neither.
 */
export async function storedToken(registry: URL, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const file = credentialsFile(env);
  const entry = (await readCredentials(file)).registries[registry.origin];
  if (!entry) return undefined;
  if (entry.expires_at - REFRESH_MARGIN_S > Date.now() / 1000) return entry.access_token;
  if (!entry.refresh_token) throw new Error(`the sign-in to ${registry.origin} has expired: run keygate-registry login`);
  const as = { issuer: entry.issuer, token_endpoint: entry.token_endpoint } as oauth.AuthorizationServer;
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, noAuth, entry.refresh_token, insecure(as));
    const tokens = await oauth.processRefreshTokenResponse(as, client, response);
    await saveEntry(file, registry.origin, entryOf({ ...as, revocation_endpoint: entry.revocation_endpoint }, tokens, entry));
    return tokens.access_token;
  } catch (err) {
    throw new Error(`the sign-in to ${registry.origin} could not be renewed (${describe(err)}): run keygate-registry login`);
  }
}

function registryUrl(given: string | undefined, env: NodeJS.ProcessEnv): URL | undefined {
  try {
    return new URL(given ?? env.KEYGATE_REGISTRY ?? DEFAULT_REGISTRY);
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  return err instanceof Error ? err.message : String(err);
}
