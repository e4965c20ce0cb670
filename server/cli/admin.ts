import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, DEFAULT_REGISTRY, request, UsageError } from './api.ts';
import { type Action, type Context, FILTERS, RESOURCES } from './commands.ts';

// keygate-registry admin RESOURCE ACTION [ARGS] [options]: the admin API of a
// running registry, over HTTP. The token comes from KEYGATE_TOKEN, else from
// `keygate-registry login` (login.ts); never from an argument, which would sit
// in shell history and in every `ps` listing.

const OPTION_HELP: Record<string, string> = {
  file: '--file PATH      the body, YAML or JSON; "-" reads standard input',
  reason: '--reason TEXT    why (kept with the switch; at most 500 characters)',
  upstream: '--upstream ID    only identities of this upstream',
  owner: '--owner SUB      only identities of this owner ("organization" for service accounts)',
  user: '--user SUB       only this person',
  gateway: '--gateway ID     only this gateway',
  source: '--source S       only clients from builtin, config, dynamic, admin or metadata_document',
  since: '--since TIME     ISO 8601 (2026-07-28T12:00:00Z) or epoch seconds, inclusive',
  until: '--until TIME     ISO 8601 or epoch seconds, inclusive',
  outcome: '--outcome O      ok, a reason (connection_disabled, denied), or error (every outcome but ok)',
  kind: '--kind K         mcp (MCP requests) or admin (admin changes); default both',
  action: '--action A      only admin changes of this action (gateway.update, user.deactivate)',
  target: '--target T      only admin changes to this target: a type (client) or type:id (client:ci-bot)',
  limit: '--limit N        at most N entries (1-1000, default 100)',
};

const COMMON = `Common options:
  --registry URL   the registry (env KEYGATE_REGISTRY; default ${DEFAULT_REGISTRY})
  --json           print the API's JSON answer instead of a table
  -h, --help       help for the command

The access token is the one \`keygate-registry login\` keeps (signed in through
the browser), or the environment variable KEYGATE_TOKEN, which wins when set
(never from the command line, where shell history and ps would keep it). It
needs the scope mcp:admin. Exit codes: 0 done, 1 the registry refused or could not be
reached (its error is printed), 2 the command was used wrongly.
`;

function usageOf(resource: string, name: string, action: Action): string {
  return `keygate-registry admin ${resource} ${name}${action.args.map((a) => ` ${a}`).join('')}${(action.options ?? []).map((o) => (o === 'file' ? ' --file PATH' : ` [--${o} …]`)).join('')}`;
}

function overview(): string {
  const lines = ['Usage: keygate-registry admin RESOURCE ACTION [ARGS] [options]', ''];
  for (const [name, r] of Object.entries(RESOURCES)) lines.push(`  ${name.padEnd(12)} ${r.summary}`, `  ${''.padEnd(12)} ${Object.keys(r.actions).join(', ')}`);
  lines.push('', 'keygate-registry admin RESOURCE --help lists what each action does.', '', COMMON);
  return lines.join('\n');
}

function resourceHelp(name: string): string {
  const r = RESOURCES[name]!;
  const lines = [`keygate-registry admin ${name}: ${r.summary}`, ''];
  for (const [action, a] of Object.entries(r.actions)) lines.push(`  ${usageOf(name, action, a)}`, `      ${a.summary}`);
  lines.push('', COMMON);
  return lines.join('\n');
}

function actionHelp(resource: string, name: string, action: Action): string {
  const options = (action.options ?? []).map((o) => `  ${OPTION_HELP[o]}`);
  return [`Usage: ${usageOf(resource, name, action)}`, '', `  ${action.summary}`, ...(options.length ? ['', ...options] : []), '', COMMON].join('\n');
}

export interface AdminIo {
  env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
  stdin(): string;
}

const processIo: AdminIo = {
  env: process.env,
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  stdin: () => readFileSync(0, 'utf8'),
};

/** Run `keygate-registry admin …` (argv after "admin"); resolves to the exit code. */
export async function runAdmin(argv: string[], io: AdminIo = processIo): Promise<number> {
  const fail = (message: string, help?: string): number => {
    io.stderr(`keygate-registry admin: ${message}\n${help ? `\n${help}` : ''}`);
    return 2;
  };
  if (argv.some((a) => a === '--token' || a.startsWith('--token='))) {
    return fail('the token is read from the environment variable KEYGATE_TOKEN only, never from the command line (shell history and ps would keep it)');
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        registry: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        file: { type: 'string', short: 'f' },
        reason: { type: 'string' },
        ...Object.fromEntries(FILTERS.map((f) => [f, { type: 'string' as const }])),
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    return fail((err as Error).message, 'Run keygate-registry admin --help for the commands.\n');
  }
  const { values, positionals } = parsed;
  const [resourceName, actionName, ...args] = positionals;
  if (resourceName === undefined) {
    if (values.help) {
      io.stdout(overview());
      return 0;
    }
    return fail('which resource?', overview());
  }
  const resource = RESOURCES[resourceName];
  if (!resource) return fail(`unknown resource "${resourceName}" (one of ${Object.keys(RESOURCES).join(', ')})`, 'Run keygate-registry admin --help for the commands.\n');
  if (actionName === undefined) {
    if (values.help) {
      io.stdout(resourceHelp(resourceName));
      return 0;
    }
    return fail(`which action on ${resourceName}?`, resourceHelp(resourceName));
  }
  const action = resource.actions[actionName];
  if (!action) return fail(`unknown action "${actionName}" for ${resourceName} (one of ${Object.keys(resource.actions).join(', ')})`, resourceHelp(resourceName));
  if (values.help) {
    io.stdout(actionHelp(resourceName, actionName, action));
    return 0;
  }
  const help = `Run keygate-registry admin ${resourceName} ${actionName} --help for its usage.\n`;
  if (args.length !== action.args.length) {
    return fail(`${resourceName} ${actionName} takes ${action.args.length ? action.args.join(' ') : 'no arguments'}${args.length > action.args.length ? `, not ${args.slice(action.args.length).map((a) => `"${a}"`).join(' ')}` : ''}`, help);
  }
  const allowed = new Set(['registry', 'json', 'help', ...(action.options ?? [])]);
  const stray = Object.keys(values).filter((k) => !allowed.has(k));
  if (stray.length) return fail(`${resourceName} ${actionName} does not take ${stray.map((s) => `--${s}`).join(', ')}`, help);

  const registryText = (values.registry as string | undefined) ?? io.env.KEYGATE_REGISTRY ?? DEFAULT_REGISTRY;
  let registry: URL;
  try {
    registry = new URL(registryText);
    if (registry.protocol !== 'http:' && registry.protocol !== 'https:') throw new Error('not http');
  } catch {
    return fail(`--registry must be an http(s) URL like ${DEFAULT_REGISTRY}, got "${registryText}"`);
  }
  let token = io.env.KEYGATE_TOKEN?.trim() || undefined;
  if (!token) {
    try {
      // login.ts (with zod and oauth4webapi) loads only when KEYGATE_TOKEN does not say the token.
      const { storedToken } = await import('./login.ts');
      token = await storedToken(registry, io.env);
    } catch (err) {
      io.stderr(`keygate-registry admin: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (!token) return fail(`sign in first (keygate-registry login ${registry.origin}), or set KEYGATE_TOKEN to an access token of the registry with the scope mcp:admin`, help);
  if (registry.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(registry.hostname)) {
    io.stderr(`keygate-registry admin: warning: the token goes to ${registry.host} over plain http; use https\n`);
  }

  const target = { registry: registry.href.replace(/\/+$/, ''), token };
  const ctx: Context = {
    call: (method, path, body) => request(target, method, path, body),
    args,
    options: values as Record<string, string | boolean | undefined>,
    json: values.json === true,
    out: io.stdout,
    stdin: io.stdin,
  };
  try {
    await action.run(ctx);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, help);
    if (err instanceof ApiError) {
      io.stderr(`keygate-registry admin: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
