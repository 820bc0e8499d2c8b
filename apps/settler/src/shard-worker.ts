/**
 * One shard's BullMQ Worker, run only while this process holds the shard's lease (ShardLease):
 * a process that takes a shard over forgets what it cached and takes a new fencing epoch before
 * its first write; one that loses the lease pauses its worker. Without leases
 * (settler.shard_lease_ms 0) the worker runs at once.
 */
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SettlementConfig } from '@settlement/config';
import { settlementQueueName, shardLeaseKey } from '@settlement/domain';
import { announceJobsDone } from '@settlement/runtime';
import type { Closing } from './closing.js';
import { ShardLease } from './shard-lease.js';
import type { ShardSettler } from './shard-settler.js';

export interface ShardWorkerOptions {
  readonly shard: string;
  readonly settler: ShardSettler;
  readonly processor: (job: Job, token?: string) => Promise<unknown>;
  readonly redis: Redis;
  /** The connection the lease is kept on; default `redis` (tests reach Redis through a proxy for the worker only). */
  readonly leaseRedis?: Redis;
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly balancer: ConstructorParameters<typeof ShardLease>[0]['policy'];
  /** Set once the process stops: a lease won after that starts nothing. */
  readonly closing: Closing;
  /** The shard was taken (lease acquired, or start-up without leases): check storage. */
  readonly onTaken: (why: string) => void;
}

/** The worker, and the shard's lease (to be started by the caller) when leases are on. */
export function startShardWorker(options: ShardWorkerOptions): { worker: Worker; lease: ShardLease | undefined } {
  const { shard, config, logger } = options;
  const s = config.settler;
  const worker = new Worker(settlementQueueName(shard), options.processor, {
    connection: options.redis,
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
  // Tells the ingestor the shard's settler is free: it cuts the shard's held partial job now.
  announceJobsDone(worker, options.redis, config.redis.prefix, shard);
  worker.on('error', (error) => logger.error({ err: error, shard }, 'worker error'));
  let running = false;
  const run = (): void => {
    running = true;
    void worker.run().catch((error: unknown) => logger.error({ err: error, shard }, 'worker stopped'));
  };
  if (s.shard_lease_ms <= 0) {
    options.onTaken('settler started');
    run();
    return { worker, lease: undefined };
  }
  const lease = new ShardLease({
    redis: options.leaseRedis ?? options.redis,
    key: shardLeaseKey(config.redis.prefix, shard),
    leaseMs: s.shard_lease_ms,
    logger,
    shard,
    onAcquired: () => {
      // A stopping process may still win a lease another settler just released (the lease is
      // given back when its turn in close() comes): its worker must not start again.
      if (options.closing.isSet) return;
      // A process that takes a shard over cannot trust what it cached while another wrote,
      // and takes a new fencing epoch before its first write.
      options.settler.takeOver();
      options.onTaken('shard lease taken');
      if (running) worker.resume();
      else run();
    },
    onLost: () => {
      // Not waiting for the job in hand: BullMQ's waiting pause first disconnects the worker's
      // blocking connection and waits for it to end, and ioredis never ends a connection that is
      // reconnecting (Redis away): that pause, and the worker, would hang for good (chaos run,
      // 4 Dec, seed 43: two shards' workers took no job for six minutes once their lease was
      // back). The job in hand finishes or stops at its lock check as before.
      if (running) void worker.pause(true).catch(() => undefined);
    },
    policy: options.balancer,
  });
  // Not started here: the caller records it first (the balancer counts the leases it holds).
  return { worker, lease };
}

/** How long close() waits for a worker's job in hand before it stops waiting, ms. */
export const WORKER_CLOSE_WAIT_MS = 10_000;

/**
 * Closes a worker, waiting for its job in hand (its current batch is finished or handed back)
 * at most `waitMs`; then gives up on it, so a close that does not end cannot keep the process
 * from exiting: the job's lock expires and the next settler resumes it (settle-step.ts). (A
 * second close(true) would not help: BullMQ returns the first close's promise.)
 */
export async function closeShardWorker(worker: Worker, logger: Logger, waitMs = WORKER_CLOSE_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), waitMs)));
  const closing = worker.close().then(() => 'closed' as const);
  const outcome = await Promise.race([closing, timedOut]);
  clearTimeout(timer);
  if (outcome === 'closed') return;
  closing.catch(() => undefined);
  logger.warn({ worker: worker.name, waitMs }, 'worker still busy at shutdown; stopping without it (its job goes to the next settler)');
}
