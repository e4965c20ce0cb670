import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from './config/schema.ts';
import type { EmbeddedDefault } from './demo/embedded.ts';
import { consoleLogger } from './log.ts';
import type { Store } from './store/index.ts';

/** Where the extension looks for a registry unless told otherwise (keygate.registryUrl's default). */
const DEFAULT_PUBLIC_URL = 'http://127.0.0.1:8787';

// keygate-registry: parse args → load config → open store → createRegistry → listen.
// Each command imports only the modules it uses, when it runs: admin, login,
// logout and --help never load the registry (docs/performance.md, Start-up).

const USAGE = `Usage: keygate-registry [--config FILE] [--port N] [--data-dir DIR]
       keygate-registry keys rotate [--config FILE] [--data-dir DIR]
       keygate-registry vault rotate [--config FILE] [--data-dir DIR]
       keygate-registry migrate [--config FILE] [--from lowdb --data-dir DIR]
       keygate-registry admin RESOURCE ACTION …   (admin API of a running registry; admin --help)
       keygate-registry login [URL] [--no-browser]  (sign in through the browser for admin)
       keygate-registry logout [URL]

  --config FILE        YAML configuration (\${ENV} is expanded); env KEYGATE_CONFIG.
                       Without one, the embedded demo default runs.
  --port N             port to listen on (0: any free port); env KEYGATE_PORT.
  --data-dir DIR       where the store and generated keys live (default ./.keygate);
                       env KEYGATE_DATA_DIR.
  --reset-demo-password  make and print a new password for the demo user.
  -h, --help           this text.

  keys rotate          generate a new signing key in the data dir (used from the
                       next start); the previous key keeps verifying the tokens
                       it signed until they expire. With storage.type postgres,
                       in the database: every running instance signs with it
                       within a second.
  vault rotate         seal every stored credential under a new vault key (a
                       generated key file gets a new key; with vault.key_env,
                       set the new key there and the old one in
                       previous_key_envs first). Stop the registry first.
  migrate              apply the PostgreSQL schema's missing migrations
                       (storage.type: postgres; a start applies them too).
  migrate --from lowdb --data-dir DIR
                       then copy the lowdb store of DIR (DIR/store.json) into
                       PostgreSQL, expiry kept, and print the count per kind.
                       Stop the registry on DIR first.
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'admin') return (await import('./cli/admin.ts')).runAdmin(argv.slice(1));
  const io = { env: process.env, stdout: (t: string) => void process.stdout.write(t), stderr: (t: string) => void process.stderr.write(t) };
  if (argv[0] === 'login') return (await import('./cli/login.ts')).runLogin(argv.slice(1), io);
  if (argv[0] === 'logout') return (await import('./cli/login.ts')).runLogout(argv.slice(1), io);
  const log = consoleLogger();
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        'reset-demo-password': { type: 'boolean' },
        from: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`keygate-registry: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const args = parsed.values;
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = parsed.positionals.join(' ');
  if (command !== '' && command !== 'keys rotate' && command !== 'vault rotate' && command !== 'migrate') {
    process.stderr.write(`keygate-registry: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }

  if (args.from !== undefined && (command !== 'migrate' || args.from !== 'lowdb')) {
    process.stderr.write(`keygate-registry: --from is for migrate, and takes lowdb (got "${args.from}")\n\n${USAGE}`);
    return 2;
  }
  const configFile = args.config ?? process.env.KEYGATE_CONFIG;
  const dataDir = resolve(args['data-dir'] ?? process.env.KEYGATE_DATA_DIR ?? '.keygate');
  const portText = args.port ?? process.env.KEYGATE_PORT;
  if (portText !== undefined && !/^\d{1,5}$/.test(portText)) {
    process.stderr.write(`keygate-registry: --port must be a number from 0 to 65535, got "${portText}"\n`);
    return 2;
  }

  // Starting the registry: its modules load while the configuration is read and the demo prepared.
  const registryModules = command === '' ? Promise.all([import('./store/index.ts'), import('./app.ts')]) : undefined;
  registryModules?.catch(() => {}); // awaited below, unless the configuration stops the start first
  const { ConfigError, loadConfig, parseConfig } = await import('./config/load.ts');
  let config: Config;
  let demo: EmbeddedDefault | undefined;
  let env: NodeJS.ProcessEnv = process.env;
  try {
    if (command === 'keys rotate') return await rotateKeys(configFile ? loadConfig(configFile) : parseConfig({}, '(defaults)'), dataDir);
    if (command === 'migrate') return await runMigrate(configFile ? loadConfig(configFile) : parseConfig({}, '(defaults)'), args.from === 'lowdb' ? dataDir : undefined);
    if (command === 'vault rotate') return await rotateVault(configFile ? loadConfig(configFile) : parseConfig({}, '(defaults)'), dataDir);
    if (configFile) {
      config = loadConfig(configFile);
    } else {
      const { embeddedDefault } = await import('./demo/embedded.ts');
      demo = await embeddedDefault(dataDir, '127.0.0.1:8787', { resetPassword: args['reset-demo-password'] });
      config = demo.config;
      env = { ...process.env, ...demo.env };
      log.warn('no --config given: running the embedded demo default. It is for trying Keygate out, not for production.');
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keygate-registry: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  const listen = config.server.listen;
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = portText !== undefined ? Number(portText) : Number(listen.slice(colon + 1));

  const server = createServer();
  server.keepAliveTimeout = 65_000;
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => ok());
    });
  } catch (err) {
    process.stderr.write(`keygate-registry: cannot listen on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    await demo?.upstream.close();
    return 1;
  }
  const address = server.address() as AddressInfo;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const publicUrl = (config.server.public_url ?? `http://${hostForUrl}:${address.port}`).replace(/\/+$/, '');

  const [{ openStore, StoreError }, { createRegistry }] = await registryModules!;
  let store;
  try {
    store = await openStore(config.storage, dataDir, env, log);
  } catch (err) {
    if (err instanceof StoreError) {
      process.stderr.write(`keygate-registry: ${err.message}\n`);
      server.close();
      await demo?.upstream.close();
      return 1;
    }
    throw err;
  }

  let registry;
  try {
    registry = await createRegistry({ config, publicUrl, dataDir, store, log, env });
  } catch (err) {
    process.stderr.write(`keygate-registry: ${(err as Error).message}\n`);
    server.close();
    await store.close();
    await demo?.upstream.close();
    return 1;
  }
  server.on('request', registry.handler);
  process.stdout.write(`listening on http://${hostForUrl}:${address.port}\n`);

  if (demo) {
    const { DEMO_GATEWAY, DEMO_PERSONAL_PREFIX, DEMO_USERNAME } = await import('./demo/embedded.ts');
    const gatewayUrl = `${publicUrl}/mcp/${DEMO_GATEWAY}`;
    const password = demo.newPassword
      ? `${demo.newPassword}   (shown once; only its bcrypt hash is kept)`
      : '(printed when it was generated; run `npm start -- --reset-demo-password` for a new one)';
    process.stdout.write(
      [
        '',
        'Keygate is running with the embedded demo default.',
        `  demo user:      ${DEMO_USERNAME}`,
        `  demo password:  ${password}`,
        `  demo gateway:   ${gatewayUrl}`,
        `                  (servers: "demo", shared; "personal", yours: connect it with any key starting`,
        `                  with ${DEMO_PERSONAL_PREFIX} in the Keygate sidebar or at ${publicUrl}/connect)`,
        `  data:           ${dataDir}`,
        '',
        'Next:',
        '  - VS Code: `npm run try:vscode` opens VS Code (code-server) in the browser with the extension;',
        '    in your own VS Code, install dist/keygate.vsix (`npm run package`) and run "Keygate: Sign In"',
        publicUrl === DEFAULT_PUBLIC_URL ? '    from the command palette.' : `    from the command palette, after setting keygate.registryUrl to ${publicUrl}.`,
        `  - Any MCP client: add ${gatewayUrl} as a Streamable HTTP server; it opens this registry's sign-in page.`,
        '',
      ].join('\n'),
    );
  }

  const shutdown = async (signal: string) => {
    log.info('%s: shutting down', signal);
    server.close();
    server.closeAllConnections();
    await registry.close();
    await store.close();
    await demo?.upstream.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  return -1; // keep running
}

async function rotateKeys(config: Config, dataDir: string): Promise<number> {
  if (config.oauth_server.signing.key_file) {
    process.stderr.write('keygate-registry: this registry signs with oauth_server.signing.key_file; rotate by setting a new key_file and listing the old one under previous_keys\n');
    return 2;
  }
  if (config.storage.type === 'postgres') return rotateSharedKeys(config, dataDir);
  const { rotateGeneratedKey } = await import('./oauth/signing-keys.ts');
  const kid = await rotateGeneratedKey(dataDir, config.oauth_server.signing.algorithm);
  process.stdout.write(`new ${config.oauth_server.signing.algorithm} signing key ${kid} in ${dataDir}: restart the registry to sign with it\n`);
  return 0;
}

/** The store for a command (keys rotate, vault rotate); undefined when it cannot be opened, which is said on stderr. */
async function openForCommand(config: Config, dataDir: string): Promise<Store | undefined> {
  const { openStore, StoreError } = await import('./store/index.ts');
  try {
    return await openStore(config.storage, dataDir);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    process.stderr.write(`keygate-registry: ${err.message}\n`);
    return undefined;
  }
}

/** keys rotate on PostgreSQL: the new key goes into the store, where every running instance picks it up (onChange). */
async function rotateSharedKeys(config: Config, dataDir: string): Promise<number> {
  const store = await openForCommand(config, dataDir);
  if (!store) return 1;
  const [{ SharedSigningKeys }, { Vault }] = await Promise.all([import('./oauth/shared-signing-keys.ts'), import('./vault/vault.ts')]);
  try {
    const kid = await new SharedSigningKeys(store, Vault.load(config.vault, dataDir, consoleLogger()), config.oauth_server).rotate();
    process.stdout.write(
      `new ${config.oauth_server.signing.algorithm} signing key ${kid} in the database: every running instance signs with it within a second; ` +
        `the previous key keeps verifying for ${config.oauth_server.token_lifetime} s (token_lifetime)\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function runMigrate(config: Config, lowdbDir: string | undefined): Promise<number> {
  const [{ copyFromLowdb, migrateSchema }, { openStore, StoreError }, { readRingFile }, { SharedSigningKeys }, { Vault }] = await Promise.all([
    import('./store/migrate.ts'),
    import('./store/index.ts'),
    import('./oauth/signing-keys.ts'),
    import('./oauth/shared-signing-keys.ts'),
    import('./vault/vault.ts'),
  ]);
  try {
    const applied = await migrateSchema(config.storage);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'the schema is up to date\n');
    if (lowdbDir === undefined) return 0;
    const counts = await copyFromLowdb(config.storage, lowdbDir);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    process.stdout.write(`copied ${total} record${total === 1 ? '' : 's'} from ${lowdbDir} into PostgreSQL (expiry kept):\n`);
    for (const [kind, n] of Object.entries(counts)) process.stdout.write(`  ${kind.padEnd(24)} ${n}\n`);
    // The generated signing keys of the data dir go along, sealed, so tokens signed before the move stay valid.
    const ring = config.oauth_server.signing.key_file ? undefined : readRingFile(lowdbDir);
    if (ring?.keys.length) {
      const store = await openStore(config.storage, lowdbDir);
      try {
        const taken = await new SharedSigningKeys(store, Vault.load(config.vault, lowdbDir, consoleLogger()), config.oauth_server).adopt(ring);
        process.stdout.write(
          taken
            ? `copied ${taken} signing key${taken === 1 ? '' : 's'} from ${lowdbDir}/signing-keys.json into PostgreSQL, sealed with the vault key\n`
            : 'the database holds signing keys already: those of the data dir were not copied\n',
        );
      } finally {
        await store.close();
      }
    }
    return 0;
  } catch (err) {
    if (err instanceof StoreError) {
      process.stderr.write(`keygate-registry: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function rotateVault(config: Config, dataDir: string): Promise<number> {
  const store = await openForCommand(config, dataDir);
  if (!store) return 1;
  const [{ Identities }, { Selections }, { SharedSigningKeys }, { Vault }] = await Promise.all([import('./vault/identities.ts'), import('./vault/selections.ts'), import('./oauth/shared-signing-keys.ts'), import('./vault/vault.ts')]);
  try {
    const vault = config.vault.key_env ? Vault.load(config.vault, dataDir, consoleLogger()) : Vault.rotateKeyFile(config.vault, dataDir);
    const resealed = await new Identities(store, vault, new Selections(store)).resealAll();
    // The generated signing keys in the database (storage.type postgres) are sealed with the vault too.
    const keys = config.storage.type === 'postgres' ? await new SharedSigningKeys(store, vault, config.oauth_server).reseal() : 0;
    process.stdout.write(`vault key ${vault.activeKeyId} is active; re-sealed ${resealed} stored credential${resealed === 1 ? '' : 's'}${keys ? ` and ${keys} signing key${keys === 1 ? '' : 's'}` : ''}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`keygate-registry: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
