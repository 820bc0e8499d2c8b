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
import { MarketCatalog, SETTLER_APP, VERIFY_JOB_NAME, encodeSettlerShardHeartbeat, ingestPositionKey, settlementQueueName, settlerMembersKey, settlerWantingKey, shardLeaseKey, verifyJobId, type SettlerShardHeartbeat } from '@settlement/domain';
import { ChangedUsers, completedJobsRetainedOf, createRedisConnection, createSettlementQueue, startHeartbeat } from '@settlement/runtime';
import {
  BalanceRepository,
  DeadLetterRepository,
  FenceRepository,
  SettlementWriter,
  checkConsistencyFits,
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
import { ShardSettler, isExpectedFailure } from './shard-settler.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';
import { ShardMovedError } from './shard-moved-error.js';
import { StorageError } from './storage-error.js';
import { StorageWatch } from './storage-watch.js';
import { warnAboutDurability } from './durability-warnings.js';

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

  for (const shard of shards) {
    const queue = createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix, completedJobsRetained: completedJobsRetainedOf(config) });
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
        settings: {
          batchStatementsMax: s.batch_statements_max,
          batchBytesMax: s.batch_bytes_max,
          retryInitialMs: s.retry_initial_ms,
          retryMaxMs: s.retry_max_ms,
          cacheRowsMax: s.cache_rows_max,
          recoveryJobsMax: s.completed_jobs_retained_max,
        },
        client,
        writer,
        watermarks,
        trades,
        balances,
        deadLetters,
        fences,
        storage,
        changedUsers,
        queue,
        redisPrefix: config.redis.prefix,
        logger,
        metrics,
        closing,
      }),
    );
  }

  const intervalMs = options.heartbeatIntervalMs ?? 5_000;
  const processor = (settler: ShardSettler) => async (job: Job, token?: string) => {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const outcome = await settler.process(job, token);
        metrics.jobDuration.observe({ shard: settler.shard }, (performance.now() - started) / 1000);
        return outcome;
      } catch (error) {
        if (error instanceof ShutdownRequestedError || closing.isSet) {
          // Back to the head of the wait list, unfinished: the next settler takes it first.
          logger.warn({ shard: settler.shard, jobId: job.id }, 'stopping: job returned to the queue');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        // The job must not fail (that would break the chain): it starts again from scratch,
        // with a fresh cache and the shard state read again, and the shard waits meanwhile.
        settler.invalidateCache();
        if (token !== undefined && !(await holdsLock(settler.shard, job, token))) {
          // Another settler has the job (this one was paused past its lock): stop here; this
          // process's late batches lose to that settler's (fencing epochs).
          logger.warn({ shard: settler.shard, jobId: job.id }, 'job lock lost to another settler; leaving the job to it');
          throw error;
        }
        const delayMs = backoffDelayMs(attempt, s.retry_initial_ms, s.retry_max_ms);
        if (error instanceof StorageError) {
          metrics.retries.inc({ shard: settler.shard, op: error.op, kind: error.kind });
          const level = isExpectedFailure(error) ? 'warn' : 'error';
          // The message says what failed; a stack per attempt of an outage would bury the log.
          logger[level]({ reason: error.message, shard: settler.shard, jobId: job.id, op: error.op, kind: error.kind, attempt, delayMs }, 'storage error: the job starts again from the shard watermark');
        } else if (error instanceof ShardMovedError) {
          metrics.retries.inc({ shard: settler.shard, op: 'job', kind: 'shard_moved' });
          logger.warn({ shard: settler.shard, jobId: job.id, attempt }, error.message);
        } else {
          metrics.retries.inc({ shard: settler.shard, op: 'job', kind: 'unexpected' });
          logger.error({ err: error, shard: settler.shard, jobId: job.id, attempt, delayMs }, 'job failed unexpectedly; retrying');
        }
        await closing.sleep(delayMs);
      }
    }
  };

  const holdsLock = async (shard: string, job: Job, token: string): Promise<boolean> => {
    try {
      return (await redis.get(`${queues.get(shard)!.toKey(job.id ?? '')}:lock`)) === token;
    } catch {
      // Redis unreachable: keep trying; BullMQ itself decides when the lock is gone.
      return true;
    }
  };

  /**
   * Asks the shard's settler to check storage against the acknowledged chain with a verify job:
   * at a take-over, and whenever a Cassandra node comes back (it may have come back without its
   * last acknowledged batches) — so an idle shard is repaired without waiting for its next job.
   */
  const verifyRequestedAtMs = new Map<string, number>();
  const requestVerify = (shard: string, why: string): void => {
    // One outstanding request per shard and lag poll is enough: a verify job checks everything.
    const now = Date.now();
    if (now - (verifyRequestedAtMs.get(shard) ?? 0) < intervalMs) return;
    verifyRequestedAtMs.set(shard, now);
    void queues
      .get(shard)!
      .add(VERIFY_JOB_NAME, { v: 1, shard }, { jobId: verifyJobId(shard, Date.now()) })
      .then(() => logger.info({ shard, why }, 'verify job added'))
      .catch((error: unknown) => logger.warn({ err: error, shard, why }, 'could not add a verify job'));
  };
  /** At start-up and at a take-over: a verify job only when storage is behind the completed jobs. */
  const verifyIfBehind = (shard: string, why: string): void => {
    void settlers
      .get(shard)!
      .storageBehindCompleted()
      .then((behind) => {
        if (behind) requestVerify(shard, `${why}: stored watermark below the completed jobs`);
      })
      .catch((error: unknown) => logger.warn({ err: error, shard, why }, 'could not compare storage with the completed jobs'));
  };
  // A node that came back may have kept only part of the last batch: always verify (the verify
  // job applies the watermark's job again), so an idle shard is repaired before its next job.
  storage.onReconnect(() => {
    for (const shard of shards) if (!leasesOn || leases.get(shard)?.isHeld === true) requestVerify(shard, 'a Cassandra node came back');
  });

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
      key: shardLeaseKey(config.redis.prefix, shard),
      leaseMs: s.shard_lease_ms,
      logger,
      shard,
      onAcquired: () => {
        // A process that takes a shard over cannot trust what it cached while another wrote,
        // and takes a new fencing epoch before its first write.
        settlers.get(shard)!.takeOver();
        verifyIfBehind(shard, 'shard lease taken');
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
      verifyIfBehind(shard, 'settler started');
      void worker.run().catch((error: unknown) => logger.error({ err: error, shard }, 'worker stopped'));
    }
  }

  const status = (): Record<string, SettlerShardHeartbeat> => {
    const out: Record<string, SettlerShardHeartbeat> = {};
    for (const [shard, settler] of settlers) {
      const halted = settler.halted;
      out[shard] = encodeSettlerShardHeartbeat({
        lastSeq: settler.lastSeq ?? 0n,
        lagMessages: lag.get(shard) ?? null,
        leaseHeld: leases.get(shard)?.isHeld ?? !leasesOn,
        halted: halted === undefined ? undefined : { afterSeq: halted.afterSeq, throughSeq: halted.throughSeq },
      });
    }
    return out;
  };

  const pollLag = async (): Promise<void> => {
    const [enqueued, stored] = await Promise.all([redis.hmget(ingestPositionKey(config.redis.prefix), ...shards), watermarks.list()]);
    const storedBySeq = new Map(stored.map((w) => [w.shard, w.lastSeq]));
    shards.forEach((shard, i) => {
      const settler = settlers.get(shard)!;
      // Storage below what this process saw acknowledged: a node came back without its last
      // batches (a periodic commit log), perhaps while no request of ours failed. A halted
      // shard is already in a chain repair, which reads the watermark itself.
      if ((storedBySeq.get(shard) ?? 0n) < settler.acknowledged && settler.halted === undefined) requestVerify(shard, 'stored watermark below an acknowledged batch');
      const settled = storedBySeq.get(shard) ?? settler.lastSeq ?? 0n;
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
  const lagTimer = setInterval(() => void pollLag().catch((error: unknown) => logger.debug({ err: error }, 'lag poll failed')), intervalMs);
  lagTimer.unref();
  const heartbeat = startHeartbeat({ redis, prefix: config.redis.prefix, app: SETTLER_APP, registry: metrics.registry, processMetrics: options.processMetrics, intervalMs, status });
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
