/**
 * Storage that goes back in time (docs/ARCHITECTURE.md, "Storage can go back in time"). A
 * Cassandra with the periodic commit log — the default of Cassandra, of ScyllaDB and of
 * `npm run stack:up` — acknowledges a write before it is synced, and after a kill -9 Cassandra
 * 2.1 replays its commit log only up to the last sync marker: the batches acknowledged since
 * are gone, trades, history, balance rows and watermark alike.
 *
 * Reproduced deterministically on a private node whose sync period (10 minutes) is longer than
 * the test: phase 1 is settled and made durable by a clean restart (SIGTERM syncs the log),
 * phase 2 is settled and acknowledged (its jobs completed in BullMQ), then Cassandra is killed
 * with SIGKILL and restarted, which loses all of phase 2. The settler, which kept running, must
 * notice by itself that storage lost acknowledged batches and apply them again from the
 * completed jobs BullMQ retains — first while no new job arrives, then with phase 3 on top.
 * Every balance must end exact and every trade stored once.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { BalanceRepository, TradeRepository, WatermarkRepository, createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { ROOT, closeTestQueues, freePort, testConfig, uniqueName } from '@settlement/testing';
import type { SettlementConfig } from '@settlement/config';
import { readPid, startLocalCassandra, stopLocalCassandra } from '@settlement/tools';
import { startSettler, type RunningSettler } from '../src/settler.js';
import { enqueue, expectBalances, usersOf, waitFor, waitForWatermarks } from './harness.js';
import { expectedBalances, generateStream, toJobs, type StreamJob } from './stream-generator.js';

const log = (message: string) => process.stderr.write(`[rollback-test] ${message}\n`);

let node: Parameters<typeof startLocalCassandra>[0];
let config: Readonly<SettlementConfig>;
let admin: ReturnType<typeof createScyllaClient>;
let catalog: MarketCatalog;
let redis: ReturnType<typeof createRedisConnection>;
const queues = new Map<string, Queue>();
let settler: RunningSettler | undefined;

beforeAll(async () => {
  const port = await freePort();
  node = {
    dir: path.join(ROOT, 'data', 'test', uniqueName('rollback_')),
    port,
    heapMb: 512,
    readyTimeoutMs: 120_000,
    // Cassandra's default mode, with a period longer than the test: nothing written after the
    // last clean restart survives a kill -9.
    yamlOverrides: { commitlog_sync: 'periodic', commitlog_sync_period_in_ms: 600_000 },
  };
  await startLocalCassandra(node, log);
  const base = testConfig({ settler: { retry_initial_ms: 20, retry_max_ms: 500, shard_lease_ms: 0 } });
  config = Object.freeze({ ...base, scylladb: { ...base.scylladb, hosts: [`127.0.0.1:${port}`] } });
  admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  await migrate(admin, {
    schemaDir: path.join(ROOT, 'schema'),
    keyspace: config.scylladb.keyspace,
    replicationFactor: config.scylladb.replication_factor,
    symbols: config.symbols.map((s) => s.name),
  });
  catalog = new MarketCatalog(config);
  redis = createRedisConnection(config.redis.url);
  for (const shard of catalog.shards) queues.set(shard, createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix }));
}, 240_000);

afterAll(async () => {
  await settler?.close();
  await closeTestQueues(queues.values(), redis);
  await admin?.shutdown();
  if (node !== undefined) {
    await stopLocalCassandra(node, log, 5_000);
    rmSync(node.dir, { recursive: true, force: true });
  }
}, 120_000);

function lastSeqs(messages: readonly SettlementMessage[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const m of messages) if (m.seq > (out.get(m.shard) ?? 0n)) out.set(m.shard, m.seq);
  return out;
}

async function allCompleted(jobs: readonly StreamJob[]): Promise<boolean> {
  for (const job of jobs) if ((await queues.get(job.shard)!.getJobState(job.jobId)) !== 'completed') return false;
  return true;
}

async function restartCassandra(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (signal === 'SIGTERM') {
    await stopLocalCassandra(node, log);
  } else {
    const pid = readPid(path.join(node.dir, 'cassandra.pid'));
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    await waitFor('the killed Cassandra to exit', async () => readPid(path.join(node.dir, 'cassandra.pid')) === undefined, 30_000);
  }
  await startLocalCassandra(node, log);
  // The test's own client reconnects on the driver's schedule; the settler's must by itself.
  await waitFor('the test client to reconnect', async () => admin.execute('SELECT release_version FROM system.local').then(() => true, () => false), 60_000);
}

describe('a Cassandra that loses acknowledged batches (periodic commit log, kill -9)', () => {
  it('re-applies the lost jobs from the retained completed jobs: every balance exact, every trade once', async () => {
    const stream = generateStream({ catalog, messages: 3_000, users: 150, seed: 16 });
    const third = Math.floor(stream.messages.length / 3);
    const phases = [stream.messages.slice(0, third), stream.messages.slice(third, 2 * third), stream.messages.slice(2 * third)];
    const prevByShard = new Map<string, bigint>();
    const jobsOf = (messages: SettlementMessage[]): StreamJob[] => {
      const jobs = toJobs(messages, 40, { prevByShard: new Map(prevByShard) });
      for (const [shard, seq] of lastSeqs(messages)) prevByShard.set(shard, seq);
      return jobs;
    };
    const [phase1, phase2, phase3] = phases.map(jobsOf) as [StreamJob[], StreamJob[], StreamJob[]];
    const upTo = (n: number) => lastSeqs(phases.slice(0, n).flat());

    settler = await startSettler({ config, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'error' }), heartbeatIntervalMs: 500 });
    const watermarks = new WatermarkRepository(admin, config.scylladb.keyspace);

    // Phase 1, made durable by a clean restart.
    await enqueue(queues, phase1);
    await waitForWatermarks(watermarks, upTo(1), 60_000);
    await restartCassandra('SIGTERM');

    // Phase 2: settled and acknowledged (every job completed), then lost by a kill -9.
    await enqueue(queues, phase2);
    await waitForWatermarks(watermarks, upTo(2), 60_000);
    await waitFor('phase 2 completed', () => allCompleted(phase2), 30_000);
    await restartCassandra('SIGKILL');

    // The loss really happened: without it this test would prove nothing.
    const afterCrash = new Map((await new WatermarkRepository(admin, config.scylladb.keyspace).list()).map((w) => [w.shard, w.lastSeq]));
    const lost = [...upTo(2)].filter(([shard, seq]) => (afterCrash.get(shard) ?? 0n) < seq);
    log(`after the kill -9: ${lost.length} of ${upTo(2).size} shards lost acknowledged batches`);
    expect(lost.length).toBeGreaterThan(0);

    // With no new job, the settler notices by itself and applies the lost jobs again.
    await waitForWatermarks(watermarks, upTo(2), 90_000);

    // Phase 3 on top: built on the repaired rows, not on what the settler had cached.
    await enqueue(queues, phase3);
    await waitForWatermarks(watermarks, upTo(3), 90_000);

    const balances = new BalanceRepository(admin, config.scylladb.keyspace);
    await expectBalances(balances, expectedBalances(stream.messages, catalog.feeAccountUserId), usersOf(stream.messages, catalog.feeAccountUserId));
    const trades = new TradeRepository(admin, config.scylladb.keyspace, config.symbols.map((s) => s.name));
    const missing: string[] = [];
    for (const market of catalog.markets.values()) {
      const mine = stream.messages.filter((m) => m.kind === 'trade' && m.shard === market.name);
      const found = await trades.findSettledSeqs(market.name, mine.map((m) => (m.kind === 'trade' ? m.tradeId : 0n)));
      for (const m of mine) if (m.kind === 'trade' && found.get(m.tradeId) !== m.seq) missing.push(`${market.name} trade ${m.tradeId} (seq ${m.seq})`);
    }
    expect(missing.slice(0, 10)).toEqual([]);
    for (const queue of queues.values()) expect(await queue.getFailedCount()).toBe(0);
  }, 400_000);
});
