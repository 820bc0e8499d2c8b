/**
 * The BullMQ processor of one shard's worker. A settlement job must never fail (that would
 * break the chain): whatever goes wrong, it starts again from scratch — a fresh cache, the shard
 * state read again — after a backoff, while the shard waits. Stopping hands the job back to the
 * head of the wait list, unfinished, so the next settler takes it first.
 */
import { WaitingError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Closing } from './closing.js';
import type { SettlerMetrics } from './metrics.js';
import { backoffDelayMs } from './retry.js';
import { isExpectedFailure, type ShardSettler } from './shard-settler.js';
import { ShardMovedError } from './shard-moved-error.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';
import { StorageError } from './storage-error.js';

export interface JobProcessorDeps {
  readonly settler: ShardSettler;
  readonly queue: Queue;
  readonly redis: Redis;
  readonly closing: Closing;
  readonly metrics: SettlerMetrics;
  readonly logger: Logger;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

export function createJobProcessor(deps: JobProcessorDeps): (job: Job, token?: string) => Promise<unknown> {
  const { settler, closing, metrics, logger } = deps;
  const shard = settler.shard;
  const holdsLock = async (job: Job, token: string): Promise<boolean> => {
    try {
      return (await deps.redis.get(`${deps.queue.toKey(job.id ?? '')}:lock`)) === token;
    } catch {
      // Redis unreachable: keep trying; BullMQ itself decides when the lock is gone.
      return true;
    }
  };

  return async (job, token) => {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const outcome = await settler.process(job, token);
        metrics.jobDuration.observe({ shard }, (performance.now() - started) / 1000);
        return outcome;
      } catch (error) {
        if (error instanceof ShutdownRequestedError || closing.isSet) {
          logger.warn({ shard, jobId: job.id }, 'stopping: job returned to the queue');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        settler.invalidateCache();
        if (token !== undefined && !(await holdsLock(job, token))) {
          // Another settler has the job (this one was paused past its lock): stop here; this
          // process's late batches lose to that settler's (fencing epochs).
          logger.warn({ shard, jobId: job.id }, 'job lock lost to another settler; leaving the job to it');
          throw error;
        }
        const delayMs = backoffDelayMs(attempt, deps.retryInitialMs, deps.retryMaxMs);
        if (error instanceof StorageError) {
          metrics.retries.inc({ shard, op: error.op, kind: error.kind });
          const level = isExpectedFailure(error) ? 'warn' : 'error';
          // The message says what failed; a stack per attempt of an outage would bury the log.
          logger[level]({ reason: error.message, shard, jobId: job.id, op: error.op, kind: error.kind, attempt, delayMs }, 'storage error: the job starts again from the shard watermark');
        } else if (error instanceof ShardMovedError) {
          metrics.retries.inc({ shard, op: 'job', kind: 'shard_moved' });
          logger.warn({ shard, jobId: job.id, attempt }, error.message);
        } else {
          metrics.retries.inc({ shard, op: 'job', kind: 'unexpected' });
          logger.error({ err: error, shard, jobId: job.id, attempt, delayMs }, 'job failed unexpectedly; retrying');
        }
        await closing.sleep(delayMs);
      }
    }
  };
}
