/**
 * The BullMQ processor of the reconcile queue: validate the payload (a bad one fails at once,
 * with UnrecoverableError and a reason naming the field), run, return the summary.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { DomainError, RECONCILE_JOB_NAME, decodeReconcileJob, type ReconcileJobRequest } from '@settlement/domain';
import { runReconciliation, type ReconcileDeps, type ReconcileSummary } from './run.js';

/** The request of a job, or UnrecoverableError: retrying a wrong payload cannot help. */
export function requestOfJob(job: Pick<Job, 'name' | 'data'>): ReconcileJobRequest {
  if (job.name !== RECONCILE_JOB_NAME) {
    throw new UnrecoverableError(`Invalid reconcile job: name: is ${JSON.stringify(job.name)}, expected "${RECONCILE_JOB_NAME}"`);
  }
  try {
    return decodeReconcileJob(job.data);
  } catch (error) {
    if (error instanceof DomainError) throw new UnrecoverableError(error.message);
    throw error;
  }
}

export function createReconcileProcessor(deps: ReconcileDeps, signal: AbortSignal, onActive?: (jobId: string | undefined) => void) {
  return async (job: Job): Promise<ReconcileSummary> => {
    const request = requestOfJob(job);
    if (request.fix && deps.corrections === undefined) throw new UnrecoverableError('Invalid reconcile job: fix: this reconciler has no correction queues');
    const trigger = request.trigger ?? (job.repeatJobKey === undefined ? 'manual' : 'scheduler');
    onActive?.(job.id);
    try {
      return await runReconciliation(deps, request, {
        jobId: job.id ?? `job-${Date.now()}`,
        trigger,
        signal,
        onProgress: (progress) => job.updateProgress({ ...progress }),
      });
    } finally {
      onActive?.(undefined);
    }
  };
}
