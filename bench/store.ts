// npm run bench:store: the latency of one store write (an upsert, awaited
// until durable) with 1k, 10k and 100k records already stored, for lowdb (the
// whole file rewritten and fsynced per write) and PostgreSQL (a real cluster
// started as the tests start it, test/helpers/postgres.ts, but with fsync on,
// so both stores wait for the disk). Prints one row per store and size:
// median and p99 of the writes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LowdbStore } from '../server/store/lowdb/lowdb-store.ts';
import { PostgresStore } from '../server/store/postgres/postgres-store.ts';
import type { Store } from '../server/store/store.ts';
import { startPostgres } from '../test/helpers/postgres.ts';

const SIZES = [1_000, 10_000, 100_000];
const WRITES = Number(process.env.BENCH_WRITES ?? 50);

/** A refresh-token-sized record. */
const record = (i: number) => ({ family: `f${i}`, client_id: 'bench-app', sub: `user${i % 500}`, scope: 'mcp:read mcp:write', resource: ['https://keygate.example/mcp/team'], auth_time: 1_700_000_000, used: false });

async function measure(store: Store): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const t = performance.now();
    await store.upsert('refresh_tokens', `bench-${i}`, record(i), Math.floor(Date.now() / 1000) + 3600);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return `${times[Math.floor(times.length / 2)]!.toFixed(2).padStart(8)} ms ${times[Math.floor(times.length * 0.99)]!.toFixed(2).padStart(8)} ms`;
}

const pg = await startPostgres({ durable: true });
try {
  console.log(`store      records   p50 write   p99 write   (${WRITES} writes each)`);
  for (const n of SIZES) {
    const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-store-'));
    try {
      const collections = { refresh_tokens: Object.fromEntries(Array.from({ length: n }, (_, i) => [`r${i}`, { payload: record(i), expires_at: 4_000_000_000 }])) };
      writeFileSync(join(dir, 'store.json'), JSON.stringify({ version: 1, collections }));
      const lowdb = await LowdbStore.open(join(dir, 'store.json'));
      console.log(`lowdb    ${String(n).padStart(9)} ${await measure(lowdb)}`);
      await lowdb.close();

      const postgres = await PostgresStore.open({ url: await pg.createDatabase() });
      await postgres.load(Object.entries(collections.refresh_tokens).map(([id, r]) => ({ kind: 'refresh_tokens', id, record: r })));
      console.log(`postgres ${String(n).padStart(9)} ${await measure(postgres)}`);
      await postgres.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await pg.stop();
}
