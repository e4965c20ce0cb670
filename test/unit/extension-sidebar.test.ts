import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ServerView, ToWebview, ViewModel } from '../../webview/protocol.ts';
import { Keychain } from '../../extension/auth/keychain.ts';
import { ClientCredentialStore } from '../../extension/credentials/client-store.ts';
import { Logger } from '../../extension/log.ts';
import { RegistryUnreachableError } from '../../extension/errors.ts';
import { MeClient, type MyServer } from '../../extension/me-client.ts';
import { RegistryClient } from '../../extension/registry-client.ts';
import { HEALTH_INTERVAL_MS, SERVERS_EVERY_CHECKS } from '../../extension/sidebar/schedule.ts';
import { SidebarController, type SidebarDeps } from '../../extension/sidebar/controller.ts';
import { buildGateways, buildServer } from '../../extension/sidebar/view-model.ts';
import { BOB } from '../helpers/fixture.ts';
import { PERSONAL_PREFIX, startSidebarRegistry, type SidebarRegistry } from '../helpers/sidebar-registry.ts';
import { FakeScheduler, MemorySecretStore, RecordingSink } from './extension-fakes.ts';

// The sidebar's logic against a real registry over HTTP: the view model built
// from GET /api/v1/me/servers, the actions (save a form, connect, disconnect,
// choose, make global), client-held values in SecretStorage, a browser
// connect watched by polling, an unreachable registry retried with backoff,
// and a revoked session. Only time and the browser are fakes.

let r: SidebarRegistry;
before(async () => {
  r = await startSidebarRegistry();
});
after(async () => {
  await r?.close();
});

function harness(options: { registry?: string; token?: string; replace?: (token: string) => Promise<string | undefined>; registryUrl?: () => string } = {}) {
  const sink = new RecordingSink();
  const log = new Logger(sink);
  const secrets = new MemorySecretStore();
  const clientValues = new ClientCredentialStore(new Keychain(secrets, log), log);
  const scheduler = new FakeScheduler();
  const opened: string[] = [];
  let token = options.token;
  const replaced: string[] = [];
  /** Requests the controller made, by kind. */
  const calls = { servers: 0, health: 0 };
  const deps: SidebarDeps = {
    registry: options.registryUrl ?? (() => options.registry ?? r.registry.url),
    session: {
      current: async () => (token ? { accessToken: token, account: 'alice@example.com' } : undefined),
      replace: async (_registry, old) => {
        replaced.push(old);
        return options.replace ? options.replace(old) : undefined;
      },
    },
    me: (url) => {
      const me = new MeClient(url);
      return Object.assign(me, {
        servers: (t: string) => {
          calls.servers++;
          return tracked(MeClient.prototype.servers.call(me, t));
        },
      });
    },
    health: (url) => {
      calls.health++;
      return tracked(new RegistryClient(url).health());
    },
    clientValues,
    openExternal: async (url) => {
      opened.push(url);
      return true;
    },
    signIn: async () => {},
    selectRegistry: async () => {},
    scheduler,
    log,
  };
  const controller = new SidebarController(deps);
  const views: ViewModel[] = [];
  controller.onDidChangeView((v) => views.push(v));
  let identityChanges = 0;
  controller.onDidChangeIdentities(() => identityChanges++);
  let ended = 0;
  controller.onDidEndSession(() => ended++);
  let reconnects = 0;
  controller.onDidReconnect(() => reconnects++);
  return {
    controller,
    sink,
    secrets,
    clientValues,
    scheduler,
    opened,
    replaced,
    views,
    identityChanges: () => identityChanges,
    ended: () => ended,
    reconnects: () => reconnects,
    calls,
    setToken: (t: string | undefined) => (token = t),
    server: (name: string): ServerView => controller.view.gateways.flatMap((g) => g.servers).find((s) => s.server === name)!,
  };
}

/** A TCP relay to 127.0.0.1:`port` on a port of its own; cut() refuses connections (and drops open ones) until restore(). */
async function startRelay(port: string) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let relayPort = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(port), '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(relayPort, '127.0.0.1', resolve));
    relayPort = (server!.address() as AddressInfo).port;
  };
  const cut = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  await listen();
  return { url: `http://127.0.0.1:${relayPort}`, cut, restore: listen, close: cut };
}

/** A registry of the test's own (the test stops and starts it), closed afterwards. */
async function withOwnRegistry(body: (own: SidebarRegistry) => Promise<void>): Promise<void> {
  const own = await startSidebarRegistry();
  try {
    await body(own);
  } finally {
    await own.close();
  }
}

/** The sidebar signed in to the registry at `url()` with `token`, its first load done and shown ready. */
async function readyHarness(token: string, url: () => string) {
  const h = harness({ token, registryUrl: url });
  await h.controller.refresh();
  await settle();
  assert.equal(h.controller.view.status, 'ready');
  return h;
}

/** Let the refreshes that timers started finish. */
/** Requests to the registry the controller has under way (its servers and health calls). */
let inFlight = 0;
function tracked<T>(call: Promise<T>): Promise<T> {
  inFlight++;
  return call.finally(() => setTimeout(() => inFlight--, 20));
}
/** Until every request the timers started has answered and been handled (a loaded machine answers later: no fixed sleep). */
const settle = async () => {
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 500 && inFlight > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
};

describe('sidebar view model from GET /api/v1/me/servers', () => {
  test('each server with its scheme, state, generated form and fitting actions; no secret anywhere', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const view = h.controller.view;
    assert.equal(view.status, 'ready');
    assert.equal(view.account, 'alice@example.com');
    assert.deepEqual(view.gateways.map((g) => [g.id, g.name]), [['team', 'Team tools']]);
    const rows = view.gateways[0]!.servers.map((s) => [s.server, s.scheme, s.storage, s.input, s.state, s.actions.join(',')]);
    assert.deepEqual(rows, [
      ['shared', 'shared', 'registry', 'none', 'ready', ''],
      ['fields', 'per_user', 'registry', 'fields', 'needs_credentials', 'edit'],
      ['client', 'per_user', 'client', 'fields', 'needs_credentials', 'edit'],
      ['token', 'per_user', 'registry', 'fields', 'needs_credentials', 'edit'],
      ['oauth', 'per_user', 'registry', 'oauth', 'needs_authorization', 'connect'],
    ]);
    // The form comes from the upstream's field definitions.
    assert.deepEqual(h.server('fields').fields, [
      { name: 'api_key', label: 'API key', description: 'From the demo dashboard', placeholder: `${PERSONAL_PREFIX}…`, secret: true, required: true, set: false },
      { name: 'team', label: 'Team', secret: false, required: false, set: false },
    ]);
    assert.deepEqual(h.server('token').fields.map((f) => [f.name, f.secret, f.required]), [['token', true, true]]);
  });

  test('a state the registry does not document yet is shown as unavailable, with what it said', () => {
    const base: MyServer = {
      gateway: { id: 'g', name: 'G' },
      server: 's',
      upstream: { id: 'u', name: 'U', description: undefined },
      scheme: 'per_user',
      storage: 'registry',
      credential: { type: 'fields', fields: [] },
      state: 'quarantined',
      reason: 'by policy',
      identity: undefined,
      choices: [],
      mcpUrl: 'http://x/mcp/g/s',
      connectUrl: 'http://x/connect/g/s',
    };
    const s = buildServer(base, undefined, false);
    assert.equal(s.state, 'unavailable');
    assert.match(s.reason!, /quarantined.*by policy/);
    const disabled = buildServer({ ...base, state: 'disabled', reason: 'the gateway is disabled by an admin' }, undefined, false);
    assert.equal(disabled.state, 'disabled');
    assert.ok(!disabled.actions.includes('edit'), 'nothing to fill in on a disabled server');
    assert.deepEqual(buildGateways({ servers: [base, { ...base, server: 't' }], clientValues: {}, pending: new Set(['g/t']) })[0]!.servers.map((x) => x.pending), [false, true]);
  });
});

describe('sidebar actions against the registry', () => {
  test('saving a form POSTs an identity with select: the server turns ready, the upstream gets the typed key, the view never holds it', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const key = `${PERSONAL_PREFIX}${Date.now()}`;
    const refused = await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: { team: 'red' }, availability: 'private' });
    assert.deepEqual(refused, { type: 'result', gateway: 'team', server: 'fields', ok: false, message: 'API key is required.' });
    const answer = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: { api_key: key, team: 'red' }, availability: 'private' })) as Extract<ToWebview, { type: 'result' }>;
    assert.equal(answer.ok, true, answer.message);
    const fields = h.server('fields');
    assert.equal(fields.state, 'ready');
    assert.deepEqual(fields.fields.map((f) => [f.name, f.set, f.value]), [['api_key', true, undefined], ['team', true, 'red']]);
    assert.deepEqual(fields.actions, ['edit', 'disconnect', 'make_global']);
    assert.equal(fields.identity?.owner, 'you');
    assert.ok(!JSON.stringify(h.views).includes(key), 'no view ever carried the secret');
    assert.ok(h.identityChanges() >= 1, 'MCP clients are told');
    // A call through the gateway now runs with that key.
    const res = await fetch(`${r.registry.url}/mcp/team/fields`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await r.token()}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    assert.equal(res.status, 200);
    assert.equal(r.upstream.seen.at(-1)!.authorization, `Bearer ${key}`);
  });

  test('changing only availability keeps the stored secret; changing one field needs the secret again', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const made = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: {}, availability: 'global' })) as Extract<ToWebview, { type: 'result' }>;
    assert.equal(made.ok, true, made.message);
    assert.equal(h.server('fields').identity?.availability, 'global');
    assert.deepEqual(h.server('fields').actions.at(-1), 'make_private');
    const partial = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: { team: 'blue' }, availability: 'global' })) as Extract<ToWebview, { type: 'result' }>;
    assert.equal(partial.ok, false);
    assert.match(partial.message, /fill in API key again/);
    const back = await h.controller.handle({ type: 'setAvailability', gateway: 'team', server: 'fields', identity: h.server('fields').identity!.id, availability: 'private' });
    assert.equal((back as { ok: boolean }).ok, true);
    assert.equal(h.server('fields').identity?.availability, 'private');
  });

  test('another person may choose a global identity; Disconnect deletes one\'s own identity and the server needs credentials again', async () => {
    const alice = harness({ token: await r.token() });
    await alice.controller.refresh();
    const id = alice.server('fields').identity!.id;
    await alice.controller.handle({ type: 'setAvailability', gateway: 'team', server: 'fields', identity: id, availability: 'global' });
    const bob = harness({ token: await r.token(BOB) });
    await bob.controller.refresh();
    assert.equal(bob.server('fields').state, 'needs_credentials');
    assert.ok(bob.server('fields').actions.includes('choose'));
    assert.deepEqual(bob.server('fields').choices.map((c) => [c.id, c.owner, c.availability]), [[id, 'someone else', 'global']]);
    const chose = (await bob.controller.handle({ type: 'chooseIdentity', gateway: 'team', server: 'fields', identity: id })) as { ok: boolean; message: string };
    assert.equal(chose.ok, true, chose.message);
    assert.equal(bob.server('fields').state, 'ready');
    assert.ok(!bob.server('fields').actions.includes('make_global'), 'only the owner changes availability');

    const gone = (await alice.controller.handle({ type: 'disconnect', gateway: 'team', server: 'fields' })) as { ok: boolean; message: string };
    assert.equal(gone.ok, true, gone.message);
    assert.equal(alice.server('fields').state, 'needs_credentials');
    assert.equal(alice.server('fields').identity, undefined);
    await bob.controller.refresh();
    assert.equal(bob.server('fields').state, 'needs_credentials');
  });

  test('a bearer-token server: the token form POSTs {token}', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const saved = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'token', values: { token: `${PERSONAL_PREFIX}tok` }, availability: 'private' })) as { ok: boolean; message: string };
    assert.equal(saved.ok, true, saved.message);
    assert.equal(h.server('token').state, 'ready');
    assert.equal(h.server('token').fields[0]!.set, true);
  });

  test('storage: client values go to SecretStorage, never to the registry; the server is ready once the required ones are there', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const before = JSON.stringify(await (await fetch(`${r.registry.url}/api/v1/me/identities`, { headers: { authorization: `Bearer ${await r.token()}` } })).json());
    const saved = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'client', values: { api_key: `${PERSONAL_PREFIX}mine`, team: 'ops' }, availability: 'private' })) as { ok: boolean; message: string };
    assert.equal(saved.ok, true, saved.message);
    assert.match(saved.message, /secret storage/);
    assert.deepEqual(await h.clientValues.get(r.registry.url, 'team', 'client'), { api_key: `${PERSONAL_PREFIX}mine`, team: 'ops' });
    const client = h.server('client');
    assert.equal(client.state, 'ready');
    assert.deepEqual(client.fields.map((f) => [f.name, f.set, f.value]), [['api_key', true, undefined], ['team', true, 'ops']]);
    assert.deepEqual(client.actions, ['edit', 'disconnect']);
    const afterSave = JSON.stringify(await (await fetch(`${r.registry.url}/api/v1/me/identities`, { headers: { authorization: `Bearer ${await r.token()}` } })).json());
    assert.equal(afterSave, before, 'the registry has no new identity');
    assert.ok(!JSON.stringify(h.views).includes('mine'));
    await h.controller.handle({ type: 'disconnect', gateway: 'team', server: 'client' });
    assert.equal(await h.clientValues.get(r.registry.url, 'team', 'client'), undefined);
    assert.equal(h.server('client').state, 'needs_credentials');
  });

  test('Connect opens the connect page and polls /me/servers with backoff until the connect finishes (or the window gets focus)', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    await settle();
    // Beside the polls, the health watch's next check (10 s after the first) is pending throughout.
    assert.deepEqual(h.scheduler.pending, [HEALTH_INTERVAL_MS]);
    const answer = (await h.controller.handle({ type: 'connect', gateway: 'team', server: 'oauth' })) as { ok: boolean; message: string };
    assert.equal(answer.ok, true);
    assert.deepEqual(h.opened, [`${r.registry.url}/connect/team/oauth`]);
    assert.equal(h.server('oauth').pending, true);
    assert.ok(h.controller.watching);
    assert.deepEqual(h.scheduler.pending, [2000, 10_000], 'first poll after 2 s');
    h.scheduler.advance(2000);
    await settle();
    assert.deepEqual(h.scheduler.pending, [3000, 8000], 'then 3 s');
    h.scheduler.advance(3000);
    await settle();
    assert.deepEqual(h.scheduler.pending, [4500, 5000], 'then 4.5 s');
    // Focus while still waiting: one more look, the poll keeps going.
    h.controller.focused();
    await settle();
    assert.ok(h.controller.watching);
    // After ten minutes nobody finished it: the watch ends; only the health watch is left.
    h.scheduler.advance(11 * 60_000);
    await settle();
    assert.equal(h.controller.watching, false);
    assert.equal(h.scheduler.pending.length, 1);
    assert.ok(h.scheduler.pending[0]! <= HEALTH_INTERVAL_MS);
    assert.equal(h.server('oauth').pending, false);
  });

  test('a message about a server that is not listed is answered, not thrown', async () => {
    const h = harness({ token: await r.token() });
    await h.controller.refresh();
    const answer = await h.controller.handle({ type: 'disconnect', gateway: 'team', server: 'nope' });
    assert.deepEqual(answer, { type: 'result', gateway: 'team', server: 'nope', ok: false, message: 'This server is no longer listed. Refresh the view.' });
  });
});

describe('sidebar resilience', () => {
  test('registry down: a clear state and retries at 1, 2, 4, 8, 15 s … said once in the log; back up, the list returns, the retries stop and the watch resumes', async () => {
    // A port nothing listens on, then the real registry at "the same place" (the registry() getter).
    let url = 'http://127.0.0.1:9';
    const h = harness({ token: await r.token(), registryUrl: () => url });
    await h.controller.refresh();
    assert.equal(h.controller.view.status, 'registry_unreachable');
    assert.match(h.controller.view.message!, /does not answer/);
    assert.equal(h.controller.view.retryAt, h.scheduler.ms + 1000);
    for (const delay of [1000, 2000, 4000, 8000, 15_000, 15_000]) {
      assert.deepEqual(h.scheduler.pending, [delay]);
      h.scheduler.advance(delay);
      await settle();
    }
    assert.equal(h.sink.lines.filter((l) => l.includes('cannot be reached')).length, 1, 'one warning per outage, not one per retry');
    url = r.registry.url;
    h.scheduler.advance(15_000);
    await settle();
    assert.equal(h.controller.view.status, 'ready');
    // No more retries: only the health watch is pending.
    assert.deepEqual(h.scheduler.pending, [HEALTH_INTERVAL_MS]);
    assert.ok(h.sink.lines.some((l) => l.includes('answers again')));
  });

  test('idle and signed in: GET /healthz every 10 s and nothing else; a registry that stops shows as unreachable at the next check', () =>
    withOwnRegistry(async (own) => {
      const h = await readyHarness(await own.token(), () => own.registry.url);
      assert.deepEqual(h.calls, { servers: 1, health: 1 }, 'one health check right after the first load');
      assert.deepEqual(h.scheduler.pending, [HEALTH_INTERVAL_MS]);
      for (let i = 2; i <= 4; i++) {
        h.scheduler.advance(HEALTH_INTERVAL_MS);
        await settle();
        assert.deepEqual(h.calls, { servers: 1, health: i }, 'while idle only /healthz is asked, once per interval');
        assert.equal(h.controller.view.status, 'ready');
      }
      assert.equal(h.reconnects(), 0, 'the same registry process: nothing to reconnect');

      await own.registry.stop();
      h.scheduler.advance(HEALTH_INTERVAL_MS);
      await settle();
      assert.equal(h.controller.view.status, 'registry_unreachable', 'shown at the next check, without any other call');
      assert.match(h.controller.view.message!, /does not answer/);
      assert.ok(h.controller.view.gateways.length > 0, 'the last known gateways stay on show (greyed)');
      assert.deepEqual(h.scheduler.pending, [1000], 'the retries with backoff take over from the watch');
      assert.equal(h.reconnects(), 0);

      // Back, as a new process on the same port and data dir: a new epoch, so MCP connections must be redone.
      await own.registry.start();
      h.scheduler.advance(1000);
      await settle();
      assert.equal(h.controller.view.status, 'ready');
      assert.equal(h.reconnects(), 1, 'a restarted registry fires onDidReconnect once');
      assert.ok(h.sink.lines.some((l) => /restarted: MCP connections to it restart/.test(l)), h.sink.lines.join('\n'));
      assert.deepEqual(h.scheduler.pending, [HEALTH_INTERVAL_MS]);
      h.scheduler.advance(HEALTH_INTERVAL_MS);
      await settle();
      assert.equal(h.reconnects(), 1, 'and only once');
    }));

  test('what others change reaches an idle sidebar: the identity Bob chose turns private; a minute of health checks later (or at once on focus) his view and his MCP servers know', () =>
    withOwnRegistry(async (own) => {
      const alice = await readyHarness(await own.token(), () => own.registry.url);
      const saved = (await alice.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: { api_key: `${PERSONAL_PREFIX}a-${Date.now()}`, team: 'red' }, availability: 'global' })) as { ok: boolean; message: string };
      assert.equal(saved.ok, true, saved.message);
      const id = alice.server('fields').identity!.id;
      const bob = await readyHarness(await own.token(BOB), () => own.registry.url);
      const chose = (await bob.controller.handle({ type: 'chooseIdentity', gateway: 'team', server: 'fields', identity: id })) as { ok: boolean; message: string };
      assert.equal(chose.ok, true, chose.message);
      assert.equal(bob.server('fields').state, 'ready');
      const servers = bob.calls.servers;
      const told = bob.identityChanges();

      // Alice makes it private: Bob's selection ends at the registry. Idle, his sidebar reads it again within a minute.
      const made = (await alice.controller.handle({ type: 'setAvailability', gateway: 'team', server: 'fields', identity: id, availability: 'private' })) as { ok: boolean; message: string };
      assert.equal(made.ok, true, made.message);
      for (let i = 1; i < SERVERS_EVERY_CHECKS; i++) {
        bob.scheduler.advance(HEALTH_INTERVAL_MS);
        await settle();
      }
      assert.equal(bob.calls.servers, servers, 'not before the minute is up');
      assert.equal(bob.server('fields').state, 'ready', 'still the old view');
      bob.scheduler.advance(HEALTH_INTERVAL_MS);
      await settle();
      assert.equal(bob.calls.servers, servers + 1, 'read again after six health checks');
      assert.equal(bob.server('fields').state, 'needs_credentials', 'what his next call does: connect his own account');
      assert.equal(bob.server('fields').identity, undefined);
      assert.equal(bob.identityChanges(), told + 1, 'his MCP servers are told (they restart and read their tools again)');

      // Global again: it does not come back by itself. Focus reads the servers at once.
      await alice.controller.handle({ type: 'setAvailability', gateway: 'team', server: 'fields', identity: id, availability: 'global' });
      bob.controller.focused();
      await settle();
      assert.equal(bob.calls.servers, servers + 2, 'focus reads the servers');
      assert.equal(bob.server('fields').state, 'needs_credentials', 'Alice\'s identity is offered, not used');
      assert.ok(bob.server('fields').choices.some((c) => c.id === id));
    }));

  test('a restart between two checks is noticed by its new epoch; an outage of the same process is not a restart', () =>
    withOwnRegistry(async (own) => {
      // The registry behind a TCP relay that can be cut: a network outage, the registry process untouched.
      const relay = await startRelay(new URL(own.registry.url).port);
      try {
        const h = await readyHarness(await own.token(), () => relay.url);
        // Stopped and started again before the next check: the view never saw it down.
        await own.registry.stop();
        await own.registry.start();
        h.scheduler.advance(HEALTH_INTERVAL_MS);
        await settle();
        assert.equal(h.controller.view.status, 'ready');
        assert.equal(h.reconnects(), 1, 'the new epoch alone tells of the restart');

        await relay.cut();
        h.controller.callFailed(new RegistryUnreachableError('GET /api/v1/gateways: did not answer'));
        await settle();
        assert.equal(h.controller.view.status, 'registry_unreachable', 'a failed call elsewhere makes the watch check at once');
        await relay.restore();
        h.scheduler.advance(1000);
        await settle();
        assert.equal(h.controller.view.status, 'ready');
        assert.equal(h.reconnects(), 1, 'the same registry process came back: its MCP sessions are intact, nothing to reconnect');
      } finally {
        await relay.close();
      }
    }));

  test('an action the registry does not answer is said beside the form, and the whole view turns unreachable at once', () =>
    withOwnRegistry(async (own) => {
      const h = await readyHarness(await own.token(), () => own.registry.url);
      await own.registry.stop();
      const answer = (await h.controller.handle({ type: 'saveCredentials', gateway: 'team', server: 'fields', values: { api_key: `${PERSONAL_PREFIX}x` }, availability: 'private' })) as { ok: boolean; message: string };
      assert.equal(answer.ok, false);
      assert.match(answer.message, /does not answer/);
      await settle();
      assert.equal(h.controller.view.status, 'registry_unreachable', 'no need to wait for the next health check');
    }));

  test('a revoked token: renewed once; when renewal fails, the session ends once (one prompt), not a loop', async () => {
    const fresh = await r.token();
    const h = harness({ token: 'not-a-token-the-registry-knows', replace: async () => fresh });
    await h.controller.refresh();
    assert.equal(h.controller.view.status, 'ready', 'a renewed token is used at once');
    assert.deepEqual(h.replaced, ['not-a-token-the-registry-knows']);

    const dead = harness({ token: 'revoked-token', replace: async () => undefined });
    await dead.controller.refresh();
    assert.equal(dead.controller.view.status, 'session_ended');
    assert.equal(dead.ended(), 1);
    assert.deepEqual(dead.scheduler.pending, [], 'no retry loop against a refusing registry');
    const answer = (await dead.controller.handle({ type: 'refresh' })) as undefined;
    assert.equal(answer, undefined);
    assert.equal(dead.replaced.length, 2, 'each explicit refresh tries once, nothing more');
  });

  test('signed out: the signed-out view (with the registry) and no requests', async () => {
    const h = harness();
    await h.controller.refresh();
    assert.deepEqual(h.controller.view, { status: 'signed_out', gateways: [], registry: r.registry.url });
  });
});
