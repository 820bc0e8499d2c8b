/**
 * The reconcile queue: the hourly job scheduler and on-demand jobs (bull-board, CLI, HTTP API)
 * share it, so every run goes through the same validated payload and the same worker.
 */
import { Queue, type ConnectionOptions, type Job } from 'bullmq';
import type { SettlementConfig } from '@settlement/config';
import { RECONCILE_FULL_SCHEDULER_ID, RECONCILE_JOB_NAME, RECONCILE_SCHEDULER_ID, RECONCILIATION_QUEUE, type ReconcileJobPayload } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';

export interface ReconcileQueueOptions {
  readonly connection: ConnectionOptions;
  /** BullMQ key prefix (config redis.prefix). */
  readonly prefix: string;
}

/** How long finished runs stay visible in bull-board: 7 days, at most 500 of each. */
const KEEP_FINISHED = { age: 7 * 24 * 3600, count: 500 } as const;

export function createReconcileQueue(options: ReconcileQueueOptions): Queue {
  return new Queue(RECONCILIATION_QUEUE, {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: { attempts: 1, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED },
  });
}

/**
 * Creates, updates or removes the scheduled run to match config. upsertJobScheduler is keyed by
 * RECONCILE_SCHEDULER_ID and atomic in Redis, so however many replicas call this at start-up
 * there is one scheduler and one pending job.
 */
export async function ensureReconcileSchedule(queue: Queue, config: Pick<SettlementConfig, 'reconciliation'>, logger: Logger): Promise<void> {
  const r = config.reconciliation;
  if (!r.enabled) {
    const removed = await Promise.all([queue.removeJobScheduler(RECONCILE_SCHEDULER_ID), queue.removeJobScheduler(RECONCILE_FULL_SCHEDULER_ID)]);
    logger.info({ schedulerIds: [RECONCILE_SCHEDULER_ID, RECONCILE_FULL_SCHEDULER_ID], removed }, 'scheduled reconciliation disabled');
    return;
  }
  const opts = { attempts: 1, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED };
  // Every interval: each user whose balances changed since the run before (recorded by the
  // settlers), so a wrong written balance of any user is found within the interval.
  const changed: ReconcileJobPayload = { mode: 'changed', fix: false, trigger: 'scheduler' };
  await queue.upsertJobScheduler(RECONCILE_SCHEDULER_ID, { every: r.interval_seconds * 1000 }, { name: RECONCILE_JOB_NAME, data: changed, opts });
  // On a longer interval: everyone, with conservation, gaps and dead letters.
  const full: ReconcileJobPayload = { mode: 'full', fix: false, trigger: 'scheduler' };
  await queue.upsertJobScheduler(RECONCILE_FULL_SCHEDULER_ID, { pattern: r.full_sweep_cron, tz: 'UTC' }, { name: RECONCILE_JOB_NAME, data: full, opts });
  logger.info({ schedulerIds: [RECONCILE_SCHEDULER_ID, RECONCILE_FULL_SCHEDULER_ID], intervalSeconds: r.interval_seconds, fullSweepCron: r.full_sweep_cron }, 'scheduled reconciliation');
}

/** Enqueues one run on demand. The payload is validated by the worker, which fails a bad one with a clear reason. */
export async function addReconcileJob(queue: Queue, payload: ReconcileJobPayload | Record<string, unknown>, jobId?: string): Promise<Job> {
  return queue.add(RECONCILE_JOB_NAME, payload, jobId === undefined ? {} : { jobId });
}
