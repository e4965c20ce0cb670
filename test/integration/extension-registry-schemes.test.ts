import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFixture, type Fixture } from '../helpers/fixture.ts';

// Issue 5: "sign-in works with registries on http://localhost and on https".
// The registry is put behind a front door of each kind (a TLS-terminating
// proxy with a certificate made here by openssl; a plain proxy reached as
// "localhost"), its issuer set to that front door's URL, and the extension's
// own sign-in code runs against it in a child process whose trusted
// certificates the test chooses (NODE_EXTRA_CA_CERTS).

const root = fileURLToPath(new URL('../..', import.meta.url));
const child = join(root, 'test', 'helpers', 'extension-sign-in-child.ts');

interface Outcome {
  ok: boolean;
  account?: string;
  iss?: string;
  aud?: unknown;
  gateways?: { id: string; mcpUrl: string }[];
  error?: string;
  code?: string;
  message?: string;
  cause?: string;
}

function runSignIn(registry: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, registry], { cwd: root, env: { ...process.env, NODE_EXTRA_CA_CERTS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('error', reject);
    p.on('exit', () => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Outcome);
      } catch {
        reject(new Error(`the sign-in process printed no result:\n${out}\n${err}`));
      }
    });
  });
}

/** Forwards every request to `target()` as it is (method, path, headers, body), both ways streamed. */
function forward(target: () => string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const to = new URL(target());
    const up = request({ hostname: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  };
}

const listen = (server: Server, host?: string) => new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
const close = (server: Server | undefined) => new Promise<void>((resolve) => (server ? (server.closeAllConnections(), server.close(() => resolve())) : resolve()));

describe('the extension signs in to a registry on https', () => {
  let dir: string;
  let cert: string;
  let front: Server;
  let f: Fixture;
  let url: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keygate-tls-'));
    cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl: ${made.stderr}`);
    let registry = '';
    front = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, forward(() => registry));
    url = `https://127.0.0.1:${await listen(front, '127.0.0.1')}`;
    f = await startFixture((config) => {
      config.server = { public_url: url };
    });
    registry = f.registry.url;
  });
  after(async () => {
    await close(front);
    await f?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('with the certificate trusted: signed in, tokens issued by the https issuer, gateways at https URLs', async () => {
    const r = await runSignIn(url, { NODE_EXTRA_CA_CERTS: cert });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.account, 'alice@example.com');
    assert.equal(r.iss, url);
    assert.ok(r.gateways!.length > 0);
    for (const g of r.gateways!) assert.ok(g.mcpUrl.startsWith(`${url}/mcp/`), g.mcpUrl);
  });

  test('with a certificate nobody trusts: the sign-in stops at its first request, saying the certificate is not trusted', async () => {
    const r = await runSignIn(url, {});
    assert.equal(r.ok, false);
    assert.equal(r.error, 'RegistryTlsError', JSON.stringify(r));
    assert.match(r.message!, new RegExp(`^${url.replace(/[.:/]/g, '\\$&')} has a certificate this editor does not trust \\(`), JSON.stringify(r));
  });
});

describe('the extension signs in to a registry on http://localhost', () => {
  let front: Server;
  let f: Fixture;
  let url: string;
  before(async () => {
    let registry = '';
    front = createHttpServer(forward(() => registry));
    url = `http://localhost:${await listen(front)}`;
    f = await startFixture((config) => {
      config.server = { public_url: url };
    });
    registry = f.registry.url;
  });
  after(async () => {
    await close(front);
    await f?.close();
  });

  test('http is allowed on loopback: signed in, tokens issued by http://localhost:PORT', async () => {
    const r = await runSignIn(url, {});
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.account, 'alice@example.com');
    assert.equal(r.iss, url);
  });
});
