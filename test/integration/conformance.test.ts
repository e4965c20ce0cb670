import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConformanceGateway, lostScenarios, resultTable, runSuite, type ScenarioResult, serverScenarios, startConformanceGateway } from '../helpers/conformance.ts';
import { auditEntries } from '../helpers/merged-gateway.ts';

// Issue 10: the official MCP conformance server suite
// (@modelcontextprotocol/conformance, every server scenario, active and
// pending) loses no scenario through the merged endpoint of a two-server
// gateway compared with the same upstream direct. The suite's client speaks
// the 2025 revisions only (2025-11-25, negotiated by its SDK v1 client); the
// gateway speaks to the upstream in the client's era where the upstream
// speaks it (a 2025 session of the gateway's own), so the comparison is made
// with a 2025 upstream and with one that also speaks 2026-07-28 (a 2025
// client crossing eras at the gateway is tested in merged-upstream-eras and
// gateway-eras, against an upstream of 2026-07-28 only). The
// conformance server is assigned with prefix "" (its tools and prompts keep
// the names the scenarios call); the other server's names stay prefixed.

for (const eras of ['legacy', 'both'] as const) {
  const upstreamEra = eras === 'legacy' ? '2025 upstream' : '2026-07-28 upstream';

  describe(`the MCP conformance server suite through /mcp/{gateway}, ${upstreamEra}`, () => {
    let g: ConformanceGateway;
    let scenarios: string[];
    let direct: Map<string, ScenarioResult>;

    before(async () => {
      g = await startConformanceGateway({ eras });
      scenarios = await serverScenarios();
      direct = await runSuite(g.direct, scenarios);
    });
    after(() => g?.close());

    test('the conformance server passes the suite directly (so the comparison cannot pass vacuously)', () => {
      assert.ok(scenarios.length >= 30, `the suite lists ${scenarios.length} server scenarios`);
      const failing = [...direct.values()].filter((r) => !r.passed).map((r) => `${r.scenario}: ${r.failures.join('; ')}`);
      assert.deepEqual(failing, [], 'every scenario passes direct');
    });

    test('every scenario that passes direct passes through the merged endpoint of a two-server gateway', async () => {
      const sent = g.upstream.requests.length;
      const through = await runSuite(g.gateway, scenarios);
      assert.deepEqual(lostScenarios(direct, through), [], `scenarios lost through the gateway:\n${resultTable(direct, through)}`);
      // The calls went through /mcp/conf as alice, to the conformance server by its own tool names ...
      const calls = (await auditEntries(g.registry)).filter((e) => e.gateway === 'conf' && e.method === 'tools/call' && e.outcome === 'ok');
      assert.ok(calls.some((e) => e.server === 'conformance' && e.name === 'test_simple_text' && e.subject !== undefined), 'the audit shows alice calling test_simple_text on server "conformance"');
      // ... in the client's era, which the upstream speaks: the gateway gives a 2025 client a 2025 session upstream
      // where the upstream accepts one (elicitation reached it as that session's real request).
      const elicitation = g.upstream.requests.slice(sent).filter((r) => r.method === 'tools/call' && r.name === 'test_elicitation');
      assert.ok(elicitation.length > 0 && elicitation.every((r) => r.era === 'legacy'), JSON.stringify(elicitation));
    });
  });
}
