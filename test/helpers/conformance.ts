import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startConformanceServer, type ConformanceServer } from './conformance-server.ts';
import { startFeatureUpstream, type FeatureUpstream } from './feature-upstream.ts';
import { ALICE } from './fixture.ts';
import { signIn } from './oauth.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

// The official MCP conformance server suite (@modelcontextprotocol/conformance,
// its `conformance server` CLI run as a child process) against the
// conformance "everything" server (conformance-server.ts) directly, and
// against the merged endpoint /mcp/{gateway} of a registry whose gateway has
// two servers: that one and a second real MCP server (feature-upstream.ts).
// The CLI has no option to send an Authorization header, so the gateway run
// goes through a bearer shim (startBearerShim): a local forwarding shim that
// only adds the caller's token. Scenario by scenario: passed (no check failed,
// the suite's own rule), with how many checks only warned.

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const NODE20 = join(root, 'test/helpers/conformance-node20.mjs');

export interface ScenarioResult {
  scenario: string;
  passed: boolean;
  warnings: number;
  /** The failed checks: `id: message`. */
  failures: string[];
}

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // Loopback only: the suite's client talks to the URL it is given, nothing else.
    const child = spawn(process.execPath, ['--import', NODE20, CLI, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    // Exit code 1 only says some scenario failed: the checks say which.
    child.on('close', (code) => (code === 0 || code === 1 ? resolve(out) : reject(new Error(`conformance CLI exited with ${code}:\n${out}`))));
  });
}

/** The suite's server scenarios (all of them: active and pending). */
export async function serverScenarios(): Promise<string[]> {
  const out = await cli(['list', '--server']);
  return [...out.matchAll(/^ {2}- (\S+)/gm)].map((m) => m[1]!);
}

/** Run every server scenario against `url`; a scenario that left no results counts as failed. */
export async function runSuite(url: string, scenarios: string[]): Promise<Map<string, ScenarioResult>> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-conformance-'));
  try {
    const log = await cli(['server', '--url', url, '--suite', 'all', '-o', dir]);
    const results = new Map<string, ScenarioResult>();
    const runs = readdirSync(dir);
    for (const scenario of scenarios) {
      // Results land in server-<scenario>-<ISO time with : and . as ->/checks.json.
      const run = runs.find((r) => r.replace(/-\d{4}-\d\d-\d\dT[\d-]+Z$/, '') === `server-${scenario}`);
      const file = run && join(dir, run, 'checks.json');
      if (!file || !existsSync(file)) {
        results.set(scenario, { scenario, passed: false, warnings: 0, failures: [`no results (${log.split('\n').find((l) => l.includes(scenario) && /fail|error/i.test(l)) ?? 'the scenario did not run'})`] });
        continue;
      }
      const checks = JSON.parse(readFileSync(file, 'utf8')) as Check[];
      const failures = checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? 'failed'}`);
      results.set(scenario, { scenario, passed: failures.length === 0, warnings: checks.filter((c) => c.status === 'WARNING').length, failures });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Scenarios that pass direct and not through the gateway, each with why. */
export function lostScenarios(direct: Map<string, ScenarioResult>, through: Map<string, ScenarioResult>): string[] {
  return [...direct.values()].filter((d) => d.passed && !through.get(d.scenario)?.passed).map((d) => `${d.scenario}: ${through.get(d.scenario)?.failures.join('; ') ?? 'not run'}`);
}

export function resultTable(direct: Map<string, ScenarioResult>, through: Map<string, ScenarioResult>): string {
  const cell = (r: ScenarioResult | undefined) => (!r ? 'not run' : r.passed ? (r.warnings ? `pass (${r.warnings} warning${r.warnings > 1 ? 's' : ''})` : 'pass') : 'FAIL');
  const rows = [...direct.keys()].map((s) => [s, cell(direct.get(s)), cell(through.get(s))]);
  const head = ['scenario', 'direct', 'through gateway'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(width[i]!)).join('  ');
  const passed = (m: Map<string, ScenarioResult>) => [...m.values()].filter((r) => r.passed).length;
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...rows.map(line), '', `${direct.size} scenarios: ${passed(direct)} pass direct, ${passed(through)} through the gateway`].join('\n');
}

/**
 * The bearer shim: a local forwarding shim in front of the registry that only
 * adds `Authorization: Bearer <token>` (the conformance CLI cannot send one).
 * Its own address in Host and Origin is written as the registry's, so the
 * registry sees what the suite would have sent it directly; any other Host or
 * Origin (the suite's DNS-rebinding probe) passes unchanged.
 */
export async function startBearerShim(target: string, token: string): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  let self = '';
  const server = createServer((req, res) => {
    const headers: IncomingHttpHeaders = { ...req.headers, authorization: `Bearer ${token}` };
    if (headers.host === self) headers.host = to.host;
    if (headers.origin === `http://${self}`) headers.origin = to.origin;
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.flushHeaders();
      answer.pipe(res);
    });
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${self}${to.pathname}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ConformanceGateway {
  /** The conformance server, direct. */
  direct: string;
  upstream: ConformanceServer;
  /** /mcp/conf through the bearer shim (alice's token). */
  gateway: string;
  registry: TestRegistry;
  close(): Promise<void>;
}

/**
 * Gateway "conf": the conformance server (assignment "conformance", prefix ""
 * so its tools and prompts keep the names the scenarios call) and a second
 * MCP server ("feature", its tools offered as feature__<name>), both shared.
 * With `eras: 'both'` the conformance server also speaks 2026-07-28 (the
 * suite speaks 2025, so the gateway still reaches it over a 2025 session).
 */
export async function startConformanceGateway(options: { eras?: 'legacy' | 'both' } = {}): Promise<ConformanceGateway> {
  const conformance: ConformanceServer = await startConformanceServer({ eras: options.eras ?? 'legacy' });
  const key = `feature-${randomBytes(8).toString('hex')}`;
  const feature: FeatureUpstream = await startFeatureUpstream({ name: 'feature', requireAuthorization: (v) => v === `Bearer ${key}` });
  let registry: TestRegistry | undefined;
  let shim: Awaited<ReturnType<typeof startBearerShim>> | undefined;
  const close = async () => {
    await shim?.close();
    await registry?.close();
    await Promise.all([conformance.close(), feature.close()]);
  };
  try {
    registry = await startRegistry(
      {
        oauth_server: { builtin: { users: [{ username: ALICE.username, password_env: 'ALICE_PASSWORD', scopes: ['mcp:read', 'mcp:write'] }] } },
        upstreams: [
          { id: 'conformance', url: conformance.url, credential: { type: 'none' } },
          { id: 'feature', url: feature.url, credential: { type: 'bearer', token_env: 'FEATURE_KEY' } },
        ],
        gateways: [
          {
            id: 'conf',
            visibility: 'private',
            servers: [
              { upstream: 'conformance', identity: 'shared', prefix: '' },
              { upstream: 'feature', identity: 'shared' },
            ],
          },
        ],
      },
      { ALICE_PASSWORD: ALICE.password, FEATURE_KEY: key },
    );
    const token = (await signIn(registry.url, ALICE)).tokens.access_token;
    shim = await startBearerShim(`${registry.url}/mcp/conf`, token);
    return { direct: conformance.url, upstream: conformance, gateway: shim.url, registry, close };
  } catch (err) {
    await close();
    throw err;
  }
}
