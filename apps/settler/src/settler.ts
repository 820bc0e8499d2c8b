/**
 * A settler process: one BullMQ Worker per shard queue (concurrency 1, and the queue's global
 * concurrency 1, so one job per shard runs at a time across every settler process), each
 * feeding that shard's single writer. Callable in-process by tests and the benchmark.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queue, Worker } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, SETTLER_APP, encodeSettlerShardHeartbeat, settlerMembersKey, settlerWantingKey, type SettlerShardHeartbeat } from '@settlement/domain';
import { ChangedUsers, completedJobsRetainedOf, createRedisConnection, createSettlementQueue, runCloseSteps, startHeartbeat, type CloseStep } from '@settlement/runtime';
import {
  BalanceRepository,
  DeadLetterRepository,
  FenceRepository,
  HistoryLayoutRepository,
  SettlementWriter,
  checkConsistencyFits,
  TradeRepository,
  WatermarkRepository,
  connectWhenReachable,
  whenReachable,
  createScyllaClient,
  scyllaOptionsFromConfig,
} from '@settlement/scylla';
import { Closing } from './closing.js';
import { createJobProcessor } from './job-processor.js';
import { keepHistoryModeCurrent } from './history-mode.js';
import { LagPoll } from './lag-poll.js';
import { closeShardWorker, startShardWorker } from './shard-worker.js';
import { LeaseBalancer } from './lease-balancer.js';
import { createSettlerMetrics, type SettlerMetrics } from './metrics.js';
import { ShardLease } from './shard-lease.js';
import { ShardSettler } from './shard-settler.js';
import { StorageWatch } from './storage-watch.js';
import { warnAboutDurability } from './durability-warnings.js';
import { VerifyRequests } from './verify-requests.js';

export interface StartSettlerOptions {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  /** A connected client to use (not shut down by close()); by default one is created from config. */
  readonly client?: cassandra.Client;
  /** Shards to serve; default every shard of the config (each symbol, then funding). */
  readonly shards?: readonly string[];
  /** Heartbeat and lag polling interval, ms. Default 5 000. */
  readonly heartbeatIntervalMs?: number;
  /** How often the history layout (migrate-history done or not) is read again, ms. Default 60 000. */
  readonly historyModeRefreshMs?: number;
  /** The process's Node.js metrics, published with the settler's (runApp's processMetrics). */
  readonly processMetrics?: Registry;
}

export interface RunningSettler {
  readonly shards: readonly string[];
  readonly metrics: SettlerMetrics;
  /** Per shard: watermark and lag, as published in the heartbeat. */
  status(): Record<string, SettlerShardHeartbeat>;
  /** Live settler processes as this one counts them, and its share of the shards; undefined without leases. */
  leaseShare(): { liveSettlers: number; fairShare: number } | undefined;
  /** Finishes the current batch of every shard, closes workers and connections. Idempotent. */
  close(): Promise<void>;
}


export async function startSettler(options: StartSettlerOptions): Promise<RunningSettler> {
  const { config, logger } = options;
  const catalog = new MarketCatalog(config);
  const shards = options.shards ?? catalog.shards;
  for (const shard of shards) if (!catalog.isShard(shard)) throw new Error(`unknown shard ${JSON.stringify(shard)}`);
  const s = config.settler;

  const ownsClient = options.client === undefined;
  const client = options.client ?? createScyllaClient(scyllaOptionsFromConfig(config));
  if (ownsClient) await connectWhenReachable(client, { logger, retryMaxMs: s.retry_max_ms });
  const keyspace = config.scylladb.keyspace;
  // A consistency that cannot read back its own writes for this replication is refused here.
  const replication = checkConsistencyFits(client, keyspace, config.scylladb.local_data_center, config.scylladb.consistency);
  const symbols = config.symbols.map((sym) => sym.name);
  const historyLayout = new HistoryLayoutRepository(client, keyspace);
  const writer = new SettlementWriter({ client, keyspace, symbols, consistency: config.scylladb.consistency, feeAccountUserId: catalog.feeAccountUserId });
  const watermarks = new WatermarkRepository(client, keyspace);
  const trades = new TradeRepository(client, keyspace, symbols);
  const balances = new BalanceRepository(client, keyspace, s.row_read_concurrency);
  const deadLetters = new DeadLetterRepository(client, keyspace);
  const fences = new FenceRepository(client, keyspace, writer.consistency);
  const storage = new StorageWatch(client);
  const metrics = createSettlerMetrics();
  const closing = new Closing();
  const redis: Redis = createRedisConnection(config.redis.url);
  const changedUsers = new ChangedUsers({ redis, prefix: config.redis.prefix });
  const assetIds = new Set(catalog.assets.keys());
  await warnAboutDurability({ redis, replication, keyspace, logger });
  const historyMode = await whenReachable('read the history layout', () => keepHistoryModeCurrent({ layout: historyLayout, writer, config, logger, refreshMs: options.historyModeRefreshMs }), { logger, retryMaxMs: s.retry_max_ms });

  const queues = new Map<string, Queue>();
  const settlers = new Map<string, ShardSettler>();
  const workers: Worker[] = [];
  const leases = new Map<string, ShardLease>();
  const leasesOn = s.shard_lease_ms > 0;
  // The live settler processes share the shards out (see LeaseBalancer).
  const balancer = leasesOn
    ? new LeaseBalancer({
        redis,
        membersKey: settlerMembersKey(config.redis.prefix),
        wantingKey: settlerWantingKey(config.redis.prefix),
        memberId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
        shardCount: shards.length,
        leaseMs: s.shard_lease_ms,
        held: () => [...leases.values()].filter((l) => l.isHeld).length,
        logger,
      })
    : undefined;
  await balancer?.start();

  // What every shard's settler shares.
  const shardDeps = {
    assetIds,
    feeAccountUserId: catalog.feeAccountUserId,
    settings: {
      batchStatementsMax: s.batch_statements_max,
      batchBytesMax: s.batch_bytes_max,
      retryInitialMs: s.retry_initial_ms,
      retryMaxMs: s.retry_max_ms,
      cacheRowsMax: s.cache_rows_max,
      cacheWarmRowsMax: s.cache_warm_rows_max,
      recoveryJobsMax: s.completed_jobs_retained_max,
      completedJobsRetainedMs: s.completed_jobs_retained_s * 1000,
      engineCanResend: config.zmq.replay_endpoint !== undefined,
    },
    ...{ client, writer, watermarks, trades, balances, deadLetters, fences, storage, changedUsers, logger, metrics, closing },
    redisPrefix: config.redis.prefix,
  };
  for (const shard of shards) {
    const queue = createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix, completedJobsRetained: completedJobsRetainedOf(config) });
    // One active job per shard across all settler processes: the single-writer rule.
    await queue.setGlobalConcurrency(1);
    queues.set(shard, queue);
    settlers.set(shard, new ShardSettler({ ...shardDeps, shard, market: catalog.markets.get(shard), queue }));
  }

  const intervalMs = options.heartbeatIntervalMs ?? 5_000;
  const verify = new VerifyRequests({ queues, settlers, logger, intervalMs });
  // A node that came back may have lost acknowledged batches: an idle shard is repaired without
  // waiting for its next job. (A last batch kept only in part is applied again by the next job
  // after the doubt — settle-step.ts — and, on an idle shard, by the node's own batchlog replay,
  // which nothing newer outvotes; a verify job at every node event would re-apply a job on every
  // flap.)
  storage.onReconnect(() => {
    for (const shard of shards) if (!leasesOn || leases.get(shard)?.isHeld === true) verify.ifBehind(shard, 'a Cassandra node came back');
  });

  for (const shard of shards) {
    const settler = settlers.get(shard)!;
    const processor = createJobProcessor({ settler, queue: queues.get(shard)!, redis, closing, metrics, logger, retryInitialMs: s.retry_initial_ms, retryMaxMs: s.retry_max_ms });
    const { worker, lease } = startShardWorker({ shard, settler, processor, redis, config, logger, balancer, closing, onTaken: (why) => verify.ifBehind(shard, why) });
    workers.push(worker);
    if (lease !== undefined) {
      leases.set(shard, lease);
      lease.start();
    }
  }

  const status = (): Record<string, SettlerShardHeartbeat> => {
    const out: Record<string, SettlerShardHeartbeat> = {};
    for (const [shard, settler] of settlers) {
      const halted = settler.halted;
      out[shard] = encodeSettlerShardHeartbeat({
        lastSeq: settler.lastSeq ?? 0n,
        lagMessages: lagPoll.lagOf(shard),
        leaseHeld: leases.get(shard)?.isHeld ?? !leasesOn,
        halted: halted === undefined ? undefined : { afterSeq: halted.afterSeq, throughSeq: halted.throughSeq },
      });
    }
    return out;
  };

  const lagPoll = new LagPoll({ redis, redisPrefix: config.redis.prefix, shards, settlers, watermarks, metrics, verify, holds: (shard) => !leasesOn || leases.get(shard)?.isHeld === true });
  const lagTimer = setInterval(() => void lagPoll.poll().catch((error: unknown) => logger.debug({ err: error }, 'lag poll failed')), intervalMs);
  lagTimer.unref();
  const heartbeat = startHeartbeat({ redis, prefix: config.redis.prefix, app: SETTLER_APP, registry: metrics.registry, processMetrics: options.processMetrics, intervalMs, status });
  logger.info({ shards, instanceId: heartbeat.instanceId }, 'settler started');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing.trigger();
      clearInterval(lagTimer);
      historyMode.stop();
      const steps: CloseStep[] = [
        // Worker.close waits for the active job: its current batch is finished or handed back.
        ['workers', () => Promise.all(workers.map((w) => closeShardWorker(w, logger)))],
        // Released after the workers stopped, so the next settler starts on a finished batch.
        ['leases', () => Promise.all([...leases.values()].map((l) => l.release()))],
        // Gone from the set at once: the others take this process's shards without waiting.
        ['balancer', () => balancer?.stop() ?? Promise.resolve()],
        ['heartbeat', () => heartbeat.stop()],
        ['queues', () => Promise.all([...queues.values()].map((q) => q.close()))],
        ['redis', () => redis.quit()],
        ['cassandra', () => (ownsClient ? client.shutdown() : Promise.resolve())],
      ];
      await runCloseSteps(steps, logger);
      logger.info({ shards }, 'settler stopped');
    })();
    return closed;
  };

  const leaseShare = () => (balancer === undefined ? undefined : { liveSettlers: balancer.live, fairShare: balancer.fairShare });
  return { shards, metrics, status, leaseShare, close };
}
