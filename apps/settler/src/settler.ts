/**
 * A settler process: one BullMQ Worker per shard queue (concurrency 1, and the queue's global
 * concurrency 1, so one job per shard runs at a time across every settler process), each
 * feeding that shard's single writer. Callable in-process by tests and the benchmark.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, WaitingError, Worker, type Job } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, settlementQueueName } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue, startHeartbeat } from '@settlement/runtime';
import {
  BalanceRepository,
  DeadLetterRepository,
  SettlementWriter,
  TradeRepository,
  WatermarkRepository,
  connectWhenReachable,
  createScyllaClient,
  scyllaOptionsFromConfig,
} from '@settlement/scylla';
import { Closing } from './closing.js';
import { LeaseBalancer } from './lease-balancer.js';
import { createSettlerMetrics, type SettlerMetrics } from './metrics.js';
import { backoffDelayMs } from './retry.js';
import { ShardLease } from './shard-lease.js';
import { ShardSettler } from './shard-settler.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';

export interface StartSettlerOptions {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  /** A connected client to use (not shut down by close()); by default one is created from config. */
  readonly client?: cassandra.Client;
  /** Shards to serve; default every shard of the config (each symbol, then funding). */
  readonly shards?: readonly string[];
  /** Heartbeat and lag polling interval, ms. Default 5 000. */
  readonly heartbeatIntervalMs?: number;
  /** The process's Node.js metrics, published with the settler's (runApp's processMetrics). */
  readonly processMetrics?: Registry;
}

export interface ShardStatus {
  /** Shard watermark, as a decimal string. */
  readonly lastSeq: string;
  /** Last sequence enqueued by the ingestor minus the watermark; null when unknown. */
  readonly lagMessages: number | null;
  /** This process holds the shard's lease: it is the shard's settler (always true without leases). */
  readonly leaseHeld: boolean;
}

export interface RunningSettler {
  readonly shards: readonly string[];
  readonly metrics: SettlerMetrics;
  /** Per shard: watermark and lag, as published in the heartbeat. */
  status(): Record<string, ShardStatus>;
  /** Live settler processes as this one counts them, and its share of the shards; undefined without leases. */
  leaseShare(): { liveSettlers: number; fairShare: number } | undefined;
  /** Finishes the current batch of every shard, closes workers and connections. Idempotent. */
  close(): Promise<void>;
}

/** Redis hash where the ingestor records, per shard, the last sequence it enqueued. */
export function lastEnqueuedKey(prefix: string): string {
  return `${prefix}:ingest:last-enqueued`;
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
  const symbols = config.symbols.map((sym) => sym.name);
  const writer = new SettlementWriter({ client, keyspace, symbols, consistency: config.scylladb.consistency, feeAccountUserId: catalog.feeAccountUserId });
  const watermarks = new WatermarkRepository(client, keyspace);
  const trades = new TradeRepository(client, keyspace, symbols);
  const balances = new BalanceRepository(client, keyspace, s.row_read_concurrency);
  const deadLetters = new DeadLetterRepository(client, keyspace);
  const metrics = createSettlerMetrics();
  const closing = new Closing();
  const redis: Redis = createRedisConnection(config.redis.url);
  const assetIds = new Set(catalog.assets.keys());

  const queues = new Map<string, Queue>();
  const settlers = new Map<string, ShardSettler>();
  const workers: Worker[] = [];
  const leases = new Map<string, ShardLease>();
  const lag = new Map<string, number | null>();
  const leasesOn = s.shard_lease_ms > 0;
  // The live settler processes share the shards out (see LeaseBalancer).
  const balancer = leasesOn
    ? new LeaseBalancer({
        redis,
        membersKey: `${config.redis.prefix}:settle:members`,
        wantingKey: `${config.redis.prefix}:settle:wanting`,
        memberId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
        shardCount: shards.length,
        leaseMs: s.shard_lease_ms,
        held: () => [...leases.values()].filter((l) => l.isHeld).length,
        logger,
      })
    : undefined;
  await balancer?.start();

  for (const shard of shards) {
    const queue = createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix });
    // One active job per shard across all settler processes: the single-writer rule.
    await queue.setGlobalConcurrency(1);
    queues.set(shard, queue);
    settlers.set(
      shard,
      new ShardSettler({
        shard,
        market: catalog.markets.get(shard),
        assetIds,
        feeAccountUserId: catalog.feeAccountUserId,
        settings: { batchStatementsMax: s.batch_statements_max, retryInitialMs: s.retry_initial_ms, retryMaxMs: s.retry_max_ms, cacheRowsMax: s.cache_rows_max },
        client,
        writer,
        watermarks,
        trades,
        balances,
        deadLetters,
        queue,
        redisPrefix: config.redis.prefix,
        logger,
        metrics,
        closing,
      }),
    );
  }

  const processor = (settler: ShardSettler) => async (job: Job, token?: string) => {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const outcome = await settler.process(job);
        metrics.jobDuration.observe({ shard: settler.shard }, (performance.now() - started) / 1000);
        return outcome;
      } catch (error) {
        if (error instanceof ShutdownRequestedError || closing.isSet) {
          // Back to the head of the wait list, unfinished: the next settler takes it first.
          logger.warn({ shard: settler.shard, jobId: job.id }, 'stopping: job returned to the queue');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        // A bug or an unexpected state: the job must not fail (that would break the chain),
        // so it is retried from scratch with a fresh cache, and the shard waits meanwhile.
        settler.invalidateCache();
        const delayMs = backoffDelayMs(attempt, s.retry_initial_ms, s.retry_max_ms);
        metrics.retries.inc({ shard: settler.shard, op: 'job', kind: 'unexpected' });
        logger.error({ err: error, shard: settler.shard, jobId: job.id, attempt, delayMs }, 'job failed unexpectedly; retrying');
        await closing.sleep(delayMs);
      }
    }
  };

  for (const shard of shards) {
    const worker = new Worker(settlementQueueName(shard), processor(settlers.get(shard)!), {
      connection: redis,
      prefix: config.redis.prefix,
      concurrency: 1,
      lockDuration: s.lock_duration_ms,
      maxStalledCount: s.max_stalled_count,
      stalledInterval: s.stalled_interval_ms,
      // Runs only while this process holds the shard's lease (see ShardLease).
      autorun: false,
      // Stored on each job (processedBy): which process settled it.
      name: `settler:${hostname()}:${process.pid}`,
    });
    worker.on('failed', (job, error) => logger.error({ err: error, shard, jobId: job?.id }, 'settlement job failed'));
    worker.on('error', (error) => logger.error({ err: error, shard }, 'worker error'));
    workers.push(worker);
    let running = false;
    const lease = new ShardLease({
      redis,
      key: `${config.redis.prefix}:settle:lease:${shard}`,
      leaseMs: s.shard_lease_ms,
      logger,
      shard,
      onAcquired: () => {
        // A process that takes a shard over cannot trust what it cached while another wrote.
        settlers.get(shard)!.invalidateCache();
        if (!running) {
          running = true;
          void worker.run().catch((error: unknown) => logger.error({ err: error, shard }, 'worker stopped'));
        } else {
          worker.resume();
        }
      },
      onLost: () => {
        if (running) void worker.pause().catch(() => undefined);
      },
      policy: balancer,
    });
    if (leasesOn) {
      leases.set(shard, lease);
      lease.start();
    } else {
      running = true;
      void worker.run().catch((error: unknown) => logger.error({ err: error, shard }, 'worker stopped'));
    }
  }

  const status = (): Record<string, ShardStatus> => {
    const out: Record<string, ShardStatus> = {};
    for (const [shard, settler] of settlers) {
      out[shard] = { lastSeq: (settler.lastSeq ?? 0n).toString(), lagMessages: lag.get(shard) ?? null, leaseHeld: leases.get(shard)?.isHeld ?? !leasesOn };
    }
    return out;
  };

  const pollLag = async (): Promise<void> => {
    const [enqueued, stored] = await Promise.all([redis.hmget(lastEnqueuedKey(config.redis.prefix), ...shards), watermarks.list()]);
    const storedBySeq = new Map(stored.map((w) => [w.shard, w.lastSeq]));
    shards.forEach((shard, i) => {
      const settled = storedBySeq.get(shard) ?? settlers.get(shard)!.lastSeq ?? 0n;
      metrics.lastSeq.set({ shard }, Number(settled));
      const last = enqueued[i];
      if (last === null || last === undefined || !/^\d+$/.test(last)) {
        lag.set(shard, null);
        return;
      }
      const behind = BigInt(last) - settled;
      lag.set(shard, Number(behind > 0n ? behind : 0n));
      metrics.lag.set({ shard }, Number(behind > 0n ? behind : 0n));
    });
  };
  const intervalMs = options.heartbeatIntervalMs ?? 5_000;
  const lagTimer = setInterval(() => void pollLag().catch((error: unknown) => logger.debug({ err: error }, 'lag poll failed')), intervalMs);
  lagTimer.unref();
  const heartbeat = startHeartbeat({ redis, prefix: config.redis.prefix, app: 'settler', registry: metrics.registry, processMetrics: options.processMetrics, intervalMs, status });
  logger.info({ shards, instanceId: heartbeat.instanceId }, 'settler started');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing.trigger();
      clearInterval(lagTimer);
      const steps: Array<[string, () => Promise<unknown>]> = [
        // Worker.close waits for the active job: its current batch is finished or handed back.
        ['workers', () => Promise.all(workers.map((w) => w.close()))],
        // Released after the workers stopped, so the next settler starts on a finished batch.
        ['leases', () => Promise.all([...leases.values()].map((l) => l.release()))],
        // Gone from the set at once: the others take this process's shards without waiting.
        ['balancer', () => balancer?.stop() ?? Promise.resolve()],
        ['heartbeat', () => heartbeat.stop()],
        ['queues', () => Promise.all([...queues.values()].map((q) => q.close()))],
        ['redis', () => redis.quit()],
        ['cassandra', () => (ownsClient ? client.shutdown() : Promise.resolve())],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (error) {
          logger.error({ err: error, step: name }, 'settler close step failed');
        }
      }
      logger.info({ shards }, 'settler stopped');
    })();
    return closed;
  };

  const leaseShare = () => (balancer === undefined ? undefined : { liveSettlers: balancer.live, fairShare: balancer.fairShare });
  return { shards, metrics, status, leaseShare, close };
}
