import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { auditEntries, connect, type MergedGateway, startMergedGateway } from '../helpers/merged-gateway.ts';

// Issue 13: the policies of an assignment cover what a server offers beside
// its tools: its resources (by URI, and the URI templates it lists) and its
// prompts, on both endpoints and in both eras. A denied resource or prompt is
// hidden from the lists and refused on read / get with the rule's reason
// (HTTP 200, JSON-RPC -32003), never reaching the upstream (which records
// every request), and the audit record of the refusal names the rule. Alice
// is in group "platform" with an example.com email; Bob is in neither.

const ERAS = ['2026-07-28', '2025-11-25'] as const;
const PROMPT_REASON = 'Prompts are for the platform team';
const ITEM_REASON = 'Bob may not read items';
const LOBBY_REASON = 'Sign in with a company account';
const POLICIES = [
  { action: 'deny', prompts: ['greet'], unless: { groups: ['platform'] }, reason: PROMPT_REASON },
  { action: 'deny', resources: ['note://crm/items/*'], when: { users: ['bob'] }, reason: ITEM_REASON },
  // About tools only: it leaves the prompts and resources alone.
  { action: 'deny', tools: ['*'], when: { users: ['nobody-at-all'] } },
];

let g: MergedGateway;
let base: string;
before(async () => {
  g = await startMergedGateway(
    [
      { id: 'crm', eras: 'both' },
      { id: 'docs', eras: 'both' },
    ],
    (config) => {
      config.oauth_server.builtin.users[0].groups = ['platform'];
      config.gateways.push(
        {
          id: 'vault',
          visibility: 'private',
          servers: [
            { upstream: 'crm', identity: 'shared', shared_identity: 'crm-svc', policies: POLICIES },
            { upstream: 'docs', identity: 'shared', shared_identity: 'docs-svc' },
          ],
        },
        // A rule that names no kind covers tools, resources and prompts alike.
        { id: 'lobby', visibility: 'public', servers: [{ upstream: 'docs', identity: 'shared', shared_identity: 'docs-svc', policies: [{ action: 'deny', unless: { email_domains: ['example.com'] }, reason: LOBBY_REASON }] }] },
      );
    },
  );
  base = g.registry.url;
});
after(() => g.close());

const reached = (rpc: string, name: string) => g.upstreams.crm!.requests.filter((r) => r.rpc === rpc && r.name === name).length;

function deniedWith(reason: string) {
  return (err: { code: number; data: unknown; message: string }) => {
    assert.equal(err.code, -32003);
    assert.deepEqual(err.data, { step: 'assignment', reason: 'policy_denied' });
    assert.equal(err.message, reason);
    return true;
  };
}

/** The latest audit record of a refusal of `name`, once written. */
async function refusalAudited(name: string, rule: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const hit = (await auditEntries(g.registry)).filter((e) => e.name === name && e.outcome === 'policy_denied').at(-1);
    if (hit) return void assert.equal(hit.rule, rule);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no policy_denied audit record for ${name}`);
}

for (const endpoint of ['raw', 'merged'] as const) {
  const url = () => (endpoint === 'raw' ? `${base}/mcp/vault/crm` : `${base}/mcp/vault`);
  const prompt = endpoint === 'raw' ? 'greet' : 'crm__greet';
  describe(`resource and prompt policies on the ${endpoint} endpoint`, () => {
    for (const era of ERAS) {
      test(`${era}: a denied prompt is hidden from prompts/list and refused on get with the rule's reason, never forwarded; allowed for whom the rule spares`, async () => {
        const bob = await connect(url(), era, { token: g.bobToken });
        const alice = await connect(url(), era, { token: g.aliceToken });
        try {
          assert.ok(!(await bob.client.listPrompts()).prompts.some((p) => p.name === prompt), 'hidden from bob');
          assert.ok((await alice.client.listPrompts()).prompts.some((p) => p.name === prompt), 'listed for alice');
          const gets = reached('prompts/get', 'greet');
          await assert.rejects(bob.client.getPrompt({ name: prompt, arguments: { who: 'x' } }), deniedWith(PROMPT_REASON));
          assert.equal(reached('prompts/get', 'greet'), gets, 'never reached the upstream');
          await refusalAudited('greet', 'policies[0]');
          const got = await alice.client.getPrompt({ name: prompt, arguments: { who: 'Ada' } });
          assert.match(JSON.stringify(got.messages), /Say hello to Ada/);
          assert.equal(reached('prompts/get', 'greet'), gets + 1);
        } finally {
          await bob.client.close();
          await alice.client.close();
        }
      });

      test(`${era}: a denied resource is hidden (its template too) and refused on read, never forwarded; other resources and other callers are untouched`, async () => {
        const bob = await connect(url(), era, { token: g.bobToken });
        const alice = await connect(url(), era, { token: g.aliceToken });
        try {
          const templates = (await bob.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
          assert.ok(!templates.includes('note://crm/items/{id}'), `template hidden from bob: ${templates.join(' ')}`);
          assert.ok((await alice.client.listResourceTemplates()).resourceTemplates.some((t) => t.uriTemplate === 'note://crm/items/{id}'), 'listed for alice');
          assert.ok((await bob.client.listResources()).resources.some((r) => r.uri === 'note://crm/readme'), 'a resource no rule names stays listed');
          const reads = reached('resources/read', 'note://crm/items/7');
          await assert.rejects(bob.client.readResource({ uri: 'note://crm/items/7' }), deniedWith(ITEM_REASON));
          assert.equal(reached('resources/read', 'note://crm/items/7'), reads, 'never reached the upstream');
          await refusalAudited('note://crm/items/7', 'policies[1]');
          assert.match(JSON.stringify(await bob.client.readResource({ uri: 'note://crm/readme' })), /readme of crm/);
          assert.match(JSON.stringify(await alice.client.readResource({ uri: 'note://crm/items/7' })), /item 7 of crm/);
        } finally {
          await bob.client.close();
          await alice.client.close();
        }
      });

      test(`${era}: completing an argument of a denied prompt or resource template is refused as its use is, never forwarded`, async () => {
        const bob = await connect(url(), era, { token: g.bobToken });
        const alice = await connect(url(), era, { token: g.aliceToken });
        const completions = () => g.upstreams.crm!.requests.filter((r) => r.rpc === 'completion/complete').length;
        try {
          const before = completions();
          await assert.rejects(bob.client.complete({ ref: { type: 'ref/resource', uri: 'note://crm/items/{id}' }, argument: { name: 'id', value: '' } }), deniedWith(ITEM_REASON));
          await assert.rejects(bob.client.complete({ ref: { type: 'ref/prompt', name: prompt }, argument: { name: 'who', value: 'A' } }), deniedWith(PROMPT_REASON));
          assert.equal(completions(), before, 'never reached the upstream');
          await refusalAudited('note://crm/items/{id}', 'policies[1]');
          const { completion } = await alice.client.complete({ ref: { type: 'ref/resource', uri: 'note://crm/items/{id}' }, argument: { name: 'id', value: '' } });
          assert.deepEqual(completion.values, ['1', '2', '3']);
          assert.equal(completions(), before + 1);
        } finally {
          await bob.client.close();
          await alice.client.close();
        }
      });
    }
  });
}

describe('a rule that names no kind', () => {
  for (const era of ERAS) {
    test(`${era}: covers prompts and resources too: hidden and refused for whom it denies, shown for whom it spares`, async () => {
      const bob = await connect(`${base}/mcp/lobby`, era, { token: g.bobToken });
      const alice = await connect(`${base}/mcp/lobby`, era, { token: g.aliceToken });
      try {
        assert.deepEqual((await bob.client.listPrompts()).prompts, []);
        assert.deepEqual((await bob.client.listResources()).resources, []);
        await assert.rejects(bob.client.getPrompt({ name: 'greet', arguments: { who: 'x' } }), deniedWith(LOBBY_REASON));
        await assert.rejects(bob.client.readResource({ uri: 'note://docs/readme' }), deniedWith(LOBBY_REASON));
        assert.ok((await alice.client.listPrompts()).prompts.some((p) => p.name === 'greet'));
        assert.match(JSON.stringify(await alice.client.readResource({ uri: 'note://docs/readme' })), /readme of docs/);
      } finally {
        await bob.client.close();
        await alice.client.close();
      }
    });
  }
});
