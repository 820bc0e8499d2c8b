/**
 * Reconciliation on demand: enqueue a reconcile job (the same job the hourly scheduler runs)
 * and read its state back from BullMQ and from reconciliation_jobs.
 */
import type { Job, Queue } from 'bullmq';
import { RECONCILE_JOB_NAME, encodeBigints, reconcileJobSchema, type ReconcileJobPayload } from '@settlement/domain';
import type { ReconciliationJobRecord, ReconciliationStore } from '@settlement/scylla';
import { NotFoundError } from './not-found-error.js';
import { parseInput } from './params.js';

/** Reconcile jobs kept in Redis after they end (as the reconciler keeps them), so their state can be read back. */
const KEEP_FINISHED = { age: 7 * 24 * 3600, count: 500 } as const;

export interface EnqueuedReconciliation {
  readonly id: string;
  readonly payload: ReconcileJobPayload;
}

/**
 * Validates `body` with the domain's schema (errors name the field) and enqueues it. `trigger`
 * (api, cli, …) is recorded unless the body names one.
 */
export async function enqueueReconciliation(queue: Queue, body: unknown, trigger: string): Promise<EnqueuedReconciliation> {
  const request = parseInput(reconcileJobSchema, body, 'reconcile request');
  // Job data is JSON: user ids travel as decimal strings, as the reconciler decodes them.
  const payload = encodeBigints({ ...request, trigger: request.trigger ?? trigger }) as ReconcileJobPayload;
  const job = await queue.add(RECONCILE_JOB_NAME, payload, { removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED, attempts: 1 });
  if (job.id === undefined) throw new Error('BullMQ returned a reconcile job without an id');
  return { id: job.id, payload };
}

export type ReconciliationState = 'waiting' | 'active' | 'delayed' | 'prioritized' | 'waiting-children' | 'completed' | 'failed' | 'unknown';

export interface ReconciliationStatus {
  readonly id: string;
  /** BullMQ state; `unknown` once the job has left Redis (the record below remains). */
  readonly state: ReconciliationState;
  readonly progress: unknown;
  readonly data: unknown;
  readonly result: unknown;
  readonly failedReason: string | undefined;
  readonly enqueuedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  /** The reconciler's row in reconciliation_jobs, once it started the run. */
  readonly record: ReconciliationJobRecord | undefined;
}

export async function getReconciliation(queue: Queue, store: ReconciliationStore, id: string): Promise<ReconciliationStatus> {
  const [job, record] = await Promise.all([queue.getJob(id) as Promise<Job | undefined>, store.getJob(id)]);
  if (job === undefined && record === undefined) throw new NotFoundError(`reconciliation ${id} not found`);
  const state = job === undefined ? 'unknown' : ((await job.getState()) as ReconciliationState);
  return {
    id,
    state,
    progress: job?.progress ?? null,
    data: job?.data ?? null,
    result: job?.returnvalue ?? null,
    failedReason: job?.failedReason || undefined,
    enqueuedAt: job === undefined ? undefined : new Date(job.timestamp),
    finishedAt: job?.finishedOn === undefined ? record?.finishedAt : new Date(job.finishedOn),
    record,
  };
}

/** Finished for good: completed or failed in BullMQ, or a finished record without the job. */
export function isFinished(status: ReconciliationStatus): boolean {
  if (status.state === 'completed' || status.state === 'failed') return true;
  return status.state === 'unknown' && status.record !== undefined && status.record.status !== 'running';
}
