/** Helpers shared by the settler's integration tests: enqueue, wait, compare with expectations. */
import type { Job, Queue } from 'bullmq';
import pino from 'pino';
import { expect } from 'vitest';
import { MarketCatalog, SETTLE_JOB_NAME, encodeSettlementJob, type SettlementMessage } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue, type ChangedUsers } from '@settlement/runtime';
import { BalanceRepository, CONSISTENCY, DeadLetterRepository, FenceRepository, SettlementWriter, TradeRepository, WatermarkRepository } from '@settlement/scylla';
import { closeTestQueues, createTestKeyspace, testConfig, waitFor, type TestKeyspace } from '@settlement/testing';
import { Closing } from '../src/closing.js';
import { createSettlerMetrics } from '../src/metrics.js';
import { ShardSettler } from '../src/shard-settler.js';
import { StorageWatch } from '../src/storage-watch.js';
import type { Expected, StreamJob } from './stream-generator.js';

// The tests of this folder take it from here with the other helpers.
export { waitFor };

/** A fresh keyspace and queue prefix, with the shards' queues and the repositories tests read. */
export interface TestBed {
  readonly ks: TestKeyspace;
  readonly catalog: MarketCatalog;
  readonly redis: ReturnType<typeof createRedisConnection>;
  readonly queues: ReadonlyMap<string, Queue>;
  readonly balances: BalanceRepository;
  readonly watermarks: WatermarkRepository;
  /** Empties the queues and drops the keyspace. */
  close(): Promise<void>;
}

export async function openTestBed(overrides: Parameters<typeof testConfig>[0] = {}, options: { redisUrl?: string } = {}): Promise<TestBed> {
  const created = await createTestKeyspace(testConfig(overrides));
  // A test that restarts its own redis-server points everything at it (testConfig sets the stack's).
  const ks = options.redisUrl === undefined ? created : { ...created, config: { ...created.config, redis: { ...created.config.redis, url: options.redisUrl } } };
  const catalog = new MarketCatalog(ks.config);
  const redis = createRedisConnection(ks.config.redis.url);
  const queues = new Map(catalog.shards.map((shard) => [shard, createSettlementQueue(shard, { connection: redis, prefix: ks.config.redis.prefix })]));
  const keyspace = ks.config.scylladb.keyspace;
  return {
    ks,
    catalog,
    redis,
    queues,
    balances: new BalanceRepository(ks.client, keyspace),
    watermarks: new WatermarkRepository(ks.client, keyspace),
    async close() {
      await closeTestQueues(queues.values(), redis);
      await ks.drop();
    },
  };
}

/** Every user the messages touch, the fee account included. */
export function usersOf(messages: readonly SettlementMessage[], feeAccountUserId: bigint): Set<bigint> {
  const users = new Set<bigint>([feeAccountUserId]);
  for (const m of messages) {
    if (m.kind === 'trade') {
      users.add(m.buyerUserId);
      users.add(m.sellerUserId);
    } else {
      users.add(m.userId);
    }
  }
  return users;
}

/**
 * One shard's settler as startSettler builds it, in this process, driven by calling process()
 * with jobs: for tests that interleave two writers deterministically. `balances` and `writer`
 * may be wrapped to hold or cut a read or a write.
 */
export function inProcessShardSettler(options: {
  ks: TestKeyspace;
  catalog: MarketCatalog;
  queue: Queue;
  shard: string;
  balances?: BalanceRepository;
  writer?: SettlementWriter;
  batchStatementsMax?: number;
  batchBytesMax?: number;
  storage?: StorageWatch;
  /** settler.cache_warm_rows_max; default 0 (no warm-up: tests that hold row reads see every read). */
  cacheWarmRowsMax?: number;
  /** Where the users of acknowledged batches are recorded; default none. */
  changedUsers?: ChangedUsers;
}): ShardSettler {
  const { ks, catalog, shard } = options;
  const config = ks.config;
  const keyspace = config.scylladb.keyspace;
  const symbols = config.symbols.map((s) => s.name);
  return new ShardSettler({
    shard,
    market: catalog.markets.get(shard),
    assetIds: new Set(catalog.assets.keys()),
    feeAccountUserId: catalog.feeAccountUserId,
    settings: { batchStatementsMax: options.batchStatementsMax ?? 600, batchBytesMax: options.batchBytesMax ?? 40_000, retryInitialMs: 20, retryMaxMs: 200, cacheRowsMax: 100_000, cacheWarmRowsMax: options.cacheWarmRowsMax ?? 0, recoveryJobsMax: 3_000, completedJobsRetainedMs: 3_600_000, engineCanResend: true },
    client: ks.client,
    writer: options.writer ?? new SettlementWriter({ client: ks.client, keyspace, symbols, consistency: config.scylladb.consistency, feeAccountUserId: catalog.feeAccountUserId }),
    watermarks: new WatermarkRepository(ks.client, keyspace),
    trades: new TradeRepository(ks.client, keyspace, symbols),
    balances: options.balances ?? new BalanceRepository(ks.client, keyspace),
    deadLetters: new DeadLetterRepository(ks.client, keyspace),
    fences: new FenceRepository(ks.client, keyspace, CONSISTENCY[config.scylladb.consistency]),
    storage: options.storage ?? new StorageWatch(),
    queue: options.queue,
    redisPrefix: config.redis.prefix,
    // TEST_LOG=info shows the settler's log while debugging a test.
    logger: pino({ level: process.env.TEST_LOG ?? 'silent' }),
    metrics: createSettlerMetrics(),
    closing: new Closing(),
    changedUsers: options.changedUsers,
  });
}

/** Adds one job to its shard's queue, as the ingestor does; the BullMQ job, to hand to a settler. */
export function addJob(queue: Queue, job: StreamJob): Promise<Job> {
  return queue.add(SETTLE_JOB_NAME, encodeSettlementJob(job.shard, job.prevLastSeq, job.messages), { jobId: job.jobId });
}

export async function enqueue(queues: ReadonlyMap<string, Queue>, jobs: readonly StreamJob[]): Promise<void> {
  const byShard = new Map<string, StreamJob[]>();
  for (const job of jobs) byShard.set(job.shard, [...(byShard.get(job.shard) ?? []), job]);
  for (const [shard, list] of byShard) {
    const queue = queues.get(shard)!;
    for (let i = 0; i < list.length; i += 200) {
      await queue.addBulk(
        list.slice(i, i + 200).map((job) => ({ name: SETTLE_JOB_NAME, data: encodeSettlementJob(job.shard, job.prevLastSeq, job.messages), opts: { jobId: job.jobId } })),
      );
    }
  }
}

/** Resolves once every shard's watermark is at least its target. */
export async function waitForWatermarks(watermarks: WatermarkRepository, targets: ReadonlyMap<string, bigint>, timeoutMs: number): Promise<void> {
  await waitFor(
    `watermarks ${[...targets].map(([s, q]) => `${s}>=${q}`).join(', ')}`,
    async () => {
      const stored = new Map((await watermarks.list()).map((w) => [w.shard, w.lastSeq]));
      return [...targets].every(([shard, seq]) => (stored.get(shard) ?? 0n) >= seq);
    },
    timeoutMs,
  );
}

/** Resolves once no queue has a job waiting, active or delayed. */
export async function waitForDrained(queues: ReadonlyMap<string, Queue>, timeoutMs: number): Promise<void> {
  await waitFor(
    'queues drained',
    async () => {
      for (const queue of queues.values()) {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
        if (Object.values(counts).some((n) => n > 0)) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

/** Every user's balances, through getUserBalances, equal the expected sums; no extra asset is non-zero. */
export async function expectBalances(balances: BalanceRepository, expected: Expected, userIds: Iterable<bigint>): Promise<number> {
  const users = [...new Set(userIds)];
  const mismatches: string[] = [];
  let checked = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < users.length) {
      const userId = users[next++]!;
      const actual = await balances.getUserBalances(userId);
      const seen = new Set<number>();
      for (const a of actual) {
        seen.add(a.assetId);
        const e = expected.rows.get(`${userId}/${a.assetId}`) ?? { available: 0n, locked: 0n };
        if (a.available !== e.available || a.frozen !== e.locked || a.total !== a.available + a.frozen) {
          mismatches.push(`user ${userId} asset ${a.assetId}: expected ${e.available}/${e.locked}, got ${a.available}/${a.frozen}`);
        }
        checked += 1;
      }
      for (const row of expected.rows.values()) {
        if (row.userId === userId && !seen.has(row.assetId) && (row.available !== 0n || row.locked !== 0n)) {
          mismatches.push(`user ${userId} asset ${row.assetId}: expected ${row.available}/${row.locked}, got no row`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  expect(mismatches.slice(0, 20)).toEqual([]);
  return checked;
}

/** Sum over all rows of each asset equals deposits − withdrawals. */
export async function expectConservation(balances: BalanceRepository, supply: ReadonlyMap<number, bigint>): Promise<void> {
  const sums = new Map<number, bigint>();
  for await (const row of balances.scanAll()) sums.set(row.assetId, (sums.get(row.assetId) ?? 0n) + row.available + row.locked);
  for (const [assetId, total] of supply) expect({ assetId, total: sums.get(assetId) ?? 0n }).toEqual({ assetId, total });
  for (const assetId of sums.keys()) expect(supply.has(assetId)).toBe(true);
}

/**
 * Storage goes back to an earlier watermark of `shard`, as a node that lost its tail would leave
 * it: written out of band, stamped just above the stored cell so it wins as the kept row would.
 */
export async function rollBackWatermark(bed: TestBed, shard: string, lastSeq: bigint, lastJobId: string): Promise<void> {
  const stored = (await bed.watermarks.get(shard))!;
  await bed.ks.client.execute(
    `UPDATE ${bed.ks.config.scylladb.keyspace}.shard_watermarks USING TIMESTAMP ? SET last_seq = ?, last_job_id = ? WHERE shard = ?`,
    [stored.writeTs + 1n, lastSeq, lastJobId, shard],
    { prepare: true },
  );
}
