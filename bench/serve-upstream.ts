// Starts the demo upstream on a free port and prints its URL (for bench/forwarding.ts).
import { startDemoUpstream } from '../server/demo/upstream.ts';

const upstream = await startDemoUpstream({ apiKey: process.env.DEMO_API_KEY ?? 'bench-key', record: false });
process.stdout.write(`upstream ${upstream.url}\n`);
process.once('SIGTERM', () => void upstream.close().then(() => process.exit(0)));
