// Starts the demo upstream on a free port and prints its URL (for bench/forwarding.ts and bench/load.ts).
// DEMO_PERSONAL_PREFIX: also accept personal keys with this prefix (bench/load.ts's per-user identities).
// With an IPC channel, answers "sessions" with the 2025 sessions open now.
import { startDemoUpstream } from '../server/demo/upstream.ts';

const upstream = await startDemoUpstream({ apiKey: process.env.DEMO_API_KEY ?? 'bench-key', personalKeyPrefix: process.env.DEMO_PERSONAL_PREFIX, record: false });
process.stdout.write(`upstream ${upstream.url}\n`);
process.on('message', (message) => {
  if (message === 'sessions') process.send!({ sessions: upstream.openSessions() });
});
process.channel?.unref();
process.once('SIGTERM', () => void upstream.close().then(() => process.exit(0)));
