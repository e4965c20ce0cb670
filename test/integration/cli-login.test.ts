import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CAROL, DAVE, startControlFixture } from '../helpers/control.ts';
import type { Fixture } from '../helpers/fixture.ts';
import { tokenRequest } from '../helpers/oauth.ts';
import { BIN } from '../helpers/spawn.ts';

// Issue 13: `keygate-registry login` signs an admin in through the browser
// (authorization code + PKCE, a loopback redirect on a port of its own), as
// other CLIs do, and keeps the tokens in a file only its owner can read; the
// admin commands use them (refreshing when needed) unless KEYGATE_TOKEN is
// set, which wins; `logout` revokes the grant. The real bin runs as a child
// process against a registry on port 0; the browser is scripted (the login
// and consent forms over HTTP, then the redirect to the CLI's loopback).

let f: Fixture;
let base: string;
const dir = mkdtempSync(join(tmpdir(), 'keygate-cli-login-'));
const credentials = join(dir, 'config', 'credentials.json');

before(async () => {
  f = await startControlFixture();
  base = f.registry.url;
});
after(async () => {
  await f?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const full: NodeJS.ProcessEnv = { ...process.env, KEYGATE_CREDENTIALS: credentials, ...env };
  if (!('KEYGATE_TOKEN' in env)) delete full.KEYGATE_TOKEN;
  const child = spawn(process.execPath, [BIN, ...args], { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { code: new Promise((resolve) => child.once('exit', resolve)), stdout: () => stdout, stderr: () => stderr };
}

/** The sign-in URL the CLI prints, once it does. */
async function printedUrl(run: Run): Promise<URL> {
  for (let i = 0; i < 400; i++) {
    const m = /^\s+(http\S+\/oauth\/authorize\S+)$/m.exec(run.stderr());
    if (m) return new URL(m[1]!);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no sign-in URL printed: ${run.stderr()}`);
}

/** The scripted browser: sign in as carol, approve on the consent page (the CLI's redirect can be anyone's on the machine: asked, never skipped), follow the redirect to the CLI's loopback. */
async function browse(url: URL): Promise<Response> {
  const { submitLogin, submitConsent } = await import('../helpers/form.ts');
  const consent = await submitLogin(url, CAROL.username, CAROL.password);
  assert.equal(consent.status, 200, 'a consent page');
  const approved = await submitConsent(consent, 'approve');
  return fetch(`${url.searchParams.get('redirect_uri')}?${new URL(approved.headers.get('location')!).searchParams}`);
}

const stored = () => JSON.parse(readFileSync(credentials, 'utf8')) as { registries: Record<string, { access_token: string; refresh_token: string; expires_at: number; scope: string }> };

describe('keygate-registry login', () => {
  test('signs in through the browser (PKCE, loopback redirect, consent asked); the tokens go to a file only the owner can read; admin commands work without KEYGATE_TOKEN', { timeout: 60_000 }, async () => {
    const run = cli(['login', base, '--no-browser']);
    const url = await printedUrl(run);
    assert.equal(url.searchParams.get('client_id'), 'keygate-cli');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('redirect_uri')!, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.equal(url.searchParams.get('scope'), 'mcp:read mcp:write mcp:admin');
    // A forged answer (another state) is refused by the CLI, which keeps waiting for the real one.
    const forged = await fetch(`${url.searchParams.get('redirect_uri')}?code=stolen&state=not-the-one&iss=${encodeURIComponent(base)}`);
    assert.equal(forged.status, 400);
    const page = await browse(url);
    assert.equal(page.status, 200);
    assert.equal(await run.code, 0, run.stderr());
    assert.match(run.stdout(), /Signed in to http:\/\/127\.0\.0\.1:\d+ \(scope: mcp:read mcp:write mcp:admin\)/);

    assert.equal(statSync(credentials).mode & 0o777, 0o600, 'readable only by its owner');
    const entry = stored().registries[new URL(base).origin]!;
    assert.ok(entry.access_token && entry.refresh_token);
    assert.ok(!readFileSync(credentials, 'utf8').includes(CAROL.password));

    const list = cli(['admin', 'gateways', 'list', '--registry', base]);
    assert.equal(await list.code, 0, list.stderr());
    assert.match(list.stdout(), /team/);
  });

  test('KEYGATE_TOKEN wins over the stored sign-in', async () => {
    const run = cli(['admin', 'gateways', 'list', '--registry', base], { KEYGATE_TOKEN: 'not-a-valid-token' });
    assert.equal(await run.code, 1);
    assert.match(run.stderr(), /401/);
  });

  test('an access token about to expire is refreshed first (the refresh token rotates), and the command works', async () => {
    const before = stored();
    const origin = new URL(base).origin;
    before.registries[origin]!.expires_at = Math.floor(Date.now() / 1000) - 1;
    writeFileSync(credentials, JSON.stringify(before), { mode: 0o600 });
    const run = cli(['admin', 'gateways', 'list', '--registry', base]);
    assert.equal(await run.code, 0, run.stderr());
    const after = stored().registries[origin]!;
    assert.notEqual(after.access_token, before.registries[origin]!.access_token);
    assert.notEqual(after.refresh_token, before.registries[origin]!.refresh_token);
    assert.ok(after.expires_at > Date.now() / 1000);
  });

  test('logout revokes the grant at the registry and forgets the tokens; admin commands then ask to sign in', async () => {
    const origin = new URL(base).origin;
    const { refresh_token } = stored().registries[origin]!;
    const run = cli(['logout', base]);
    assert.equal(await run.code, 0, run.stderr());
    assert.match(run.stdout(), /Signed out/);
    const refreshed = await tokenRequest(base, { grant_type: 'refresh_token', client_id: 'keygate-cli', refresh_token });
    assert.equal(refreshed.status, 400, 'the refresh token no longer works');
    const list = cli(['admin', 'gateways', 'list', '--registry', base]);
    assert.equal(await list.code, 2);
    assert.match(list.stderr(), /keygate-registry login/);
  });

  test('a sign-in refused at the registry (dave denies consent) ends login with its error, and nothing is stored', { timeout: 60_000 }, async () => {
    const run = cli(['login', base, '--no-browser']);
    const url = await printedUrl(run);
    const { submitLogin, submitConsent } = await import('../helpers/form.ts');
    const consent = await submitLogin(url, DAVE.username, DAVE.password);
    const denied = await submitConsent(consent, 'deny');
    await fetch(`${url.searchParams.get('redirect_uri')}?${new URL(denied.headers.get('location')!).searchParams}`);
    assert.equal(await run.code, 1);
    assert.match(run.stderr(), /access_denied/);
    assert.throws(() => statSync(credentials));
  });
});
