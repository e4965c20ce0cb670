// npm run bench:registration: what a flood of RFC 7591 registrations does to
// the store and to sign-in. A registry (its own process, the default
// oauth_server.registration limits) takes 600 maximal registrations from one
// address, then, on a fresh data dir, 1,200 from 60 addresses (127.0.1.x: on
// Linux every 127/8 address is the loopback, so each is a distinct remote
// address to the registry). Each time it prints how many were accepted, the
// store's size, and the median of 7 sign-ins (authorize → login → consent →
// token, with a configured client) before and after the flood.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS } from '../server/oauth/register.ts';
import { submitConsent, submitLogin } from '../test/helpers/form.ts';
import { authorizeUrl, pkce, REDIRECT, tokenRequest } from '../test/helpers/oauth.ts';
import { startProcess } from './process.ts';

const USER = { username: 'bench', password: 'bench-password' };
const CLIENT = 'bench-app';

/**
 * The largest registration the registry accepts: as many redirect URIs, as
 * long, as it allows. (Before the limits, a 32 KB body of 30 URIs of 1,000
 * characters was: BENCH_URIS=30 BENCH_URI_LENGTH=1000 to compare.)
 */
const URIS = Number(process.env.BENCH_URIS ?? MAX_REDIRECT_URIS);
const URI_LENGTH = Number(process.env.BENCH_URI_LENGTH ?? MAX_REDIRECT_URI_LENGTH);
function maximalRegistration(i: number): string {
  const redirect_uris = Array.from({ length: URIS }, (_, n) => {
    const prefix = `https://client-${i}.example/cb/${n}/`;
    return prefix + 'x'.repeat(URI_LENGTH - prefix.length);
  });
  return JSON.stringify({
    redirect_uris,
    client_name: 'n'.repeat(200),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'mcp:read mcp:write mcp:admin offline_access',
    application_type: 'native',
  });
}

function start(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const config = join(dataDir, 'bench.yaml');
  writeFileSync(
    config,
    `oauth_server:
  builtin:
    users:
      - username: ${USER.username}
        password_env: BENCH_PASSWORD
        scopes: [mcp:read, mcp:write]
  clients:
    - client_id: ${CLIENT}
      name: Bench app
      redirect_uris: [${REDIRECT}]
  # The flood plays other hosts from 127.0.0.x: count loopback addresses as any other.
  registration:
    rate_limit:
      loopback: true
`,
  );
  return startProcess(['server/bin/keygate-registry.mjs', '--config', config, '--port', '0', '--data-dir', dataDir], { BENCH_PASSWORD: USER.password, KEYGATE_LOG_LEVEL: 'warn' }, /listening on (\S+)\n/).then(({ child, match }) => ({ child, url: match[1]! }));
}

/** POST /oauth/register from a chosen local address; resolves to the status. */
function register(url: string, body: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/oauth/register`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One sign-in as a person does it, consent page included; milliseconds. */
async function signInOnce(url: string): Promise<number> {
  const t0 = performance.now();
  const { verifier, challenge } = pkce();
  const authorize = authorizeUrl(url, { response_type: 'code', client_id: CLIENT, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 's', prompt: 'consent' });
  const consent = await submitLogin(authorize, USER.username, USER.password);
  const back = await submitConsent(consent, 'approve');
  const code = new URL(back.headers.get('location')!).searchParams.get('code');
  if (!code) throw new Error(`sign-in failed: HTTP ${back.status}`);
  const res = await tokenRequest(url, { grant_type: 'authorization_code', client_id: CLIENT, code, redirect_uri: REDIRECT, code_verifier: verifier });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status}`);
  await res.arrayBuffer();
  return performance.now() - t0;
}

async function signInMedian(url: string): Promise<number> {
  await signInOnce(url); // warm-up
  const times: number[] = [];
  for (let i = 0; i < 7; i++) times.push(await signInOnce(url));
  return times.sort((a, b) => a - b)[3]!;
}

interface Row {
  scenario: string;
  accepted: number;
  refused: Map<number, number>;
  storeBytes: number;
  before: number;
  after: number;
}

async function flood(scenario: string, total: number, addressOf: (i: number) => string): Promise<Row> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-bench-registration-'));
  const registry = await start(dataDir);
  try {
    const before = await signInMedian(registry.url);
    let accepted = 0;
    const refused = new Map<number, number>();
    for (let i = 0; i < total; i++) {
      const status = await register(registry.url, maximalRegistration(i), addressOf(i));
      if (status === 201) accepted++;
      else refused.set(status, (refused.get(status) ?? 0) + 1);
    }
    const storeBytes = statSync(join(dataDir, 'store.json')).size;
    const after = await signInMedian(registry.url);
    return { scenario, accepted, refused, storeBytes, before, after };
  } finally {
    await new Promise((resolve) => (registry.child.exitCode !== null ? resolve(undefined) : (registry.child.once('exit', resolve), registry.child.kill('SIGTERM'))));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const rows = [
  await flood('600 from one address', 600, () => '127.0.0.1'),
  await flood('1,200 from 60 addresses', 1200, (i) => `127.0.1.${1 + (i % 60)}`),
];

console.log(`\nmaximal RFC 7591 registrations (${URIS} redirect URIs of ${URI_LENGTH} characters), node ${process.version}\n`);
console.log('flood                       accepted  refused             store     sign-in before  sign-in after');
for (const r of rows) {
  const refused = [...r.refused].map(([status, n]) => `${n}×${status}`).join(' ') || '0';
  console.log(
    `${r.scenario.padEnd(27)} ${String(r.accepted).padStart(8)}  ${refused.padEnd(18)} ${`${(r.storeBytes / 1e6).toFixed(2)} MB`.padStart(9)}  ${`${r.before.toFixed(0)} ms`.padStart(14)}  ${`${r.after.toFixed(0)} ms`.padStart(13)}`,
  );
}
