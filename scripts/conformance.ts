// npm run conformance: the official MCP conformance server suite
// (@modelcontextprotocol/conformance) against the conformance "everything"
// server directly and through /mcp/{gateway} of a two-server gateway (see
// test/helpers/conformance.ts), printed as one table. Exits 1 when a scenario
// that passes direct does not pass through the gateway.
import { lostScenarios, resultTable, runSuite, serverScenarios, startConformanceGateway } from '../test/helpers/conformance.ts';

const g = await startConformanceGateway();
try {
  const scenarios = await serverScenarios();
  const direct = await runSuite(g.direct, scenarios);
  const through = await runSuite(g.gateway, scenarios);
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
