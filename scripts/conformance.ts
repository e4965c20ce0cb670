// npm run conformance: the official MCP conformance server suite
// (@modelcontextprotocol/conformance) against the conformance "everything"
// server directly and through /mcp/{gateway} of a two-server gateway (see
// test/helpers/conformance.ts), once with a 2025 upstream and once with one
// that also speaks 2026-07-28 (the era the gateway then speaks to it), each
// printed as a table. Exits 1 when a scenario that passes direct does not
// pass through the gateway.
import { lostScenarios, resultTable, runSuite, serverScenarios, startConformanceGateway } from '../test/helpers/conformance.ts';

const scenarios = await serverScenarios();
for (const eras of ['legacy', 'both'] as const) {
  const g = await startConformanceGateway({ eras });
  try {
    const direct = await runSuite(g.direct, scenarios);
    const through = await runSuite(g.gateway, scenarios);
    console.log(`\n${eras === 'legacy' ? 'Upstream in the 2025 era' : 'Upstream in the 2026-07-28 era (the suite speaks 2025-11-25 to the gateway)'}\n`);
    console.log(resultTable(direct, through));
    const lost = lostScenarios(direct, through);
    if (lost.length) {
      console.log(`\nlost through the gateway:\n${lost.map((l) => `  ${l}`).join('\n')}`);
      process.exitCode = 1;
    } else {
      console.log('no scenario lost through the gateway');
    }
  } finally {
    await g.close();
  }
}
