import { Queue, type ConnectionOptions } from 'bullmq';
import { settlementQueueName } from '@settlement/domain';

/** Options every settlement queue is created with. */
export interface SettlementQueueOptions {
  readonly connection: ConnectionOptions;
  /** BullMQ key prefix, a Redis Cluster hash tag such as {settlement}. */
  readonly prefix: string;
  /**
   * Completed jobs kept, newest first (config settler.completed_jobs_retained_max and _s). A
   * settler applies them again when storage lost acknowledged batches; see the config's docs.
   * Applied by whoever adds a job (the ingestor, a settler's verify job). Default 3 000 and 3 600 s.
   */
  readonly completedJobsRetained?: { readonly count: number; readonly ageSeconds: number };
}

export const COMPLETED_JOBS_RETAINED_DEFAULT = { count: 3_000, ageSeconds: 3_600 } as const;

/** The retention of the config's settler section, for SettlementQueueOptions. */
export function completedJobsRetainedOf(config: { settler: { completed_jobs_retained_max: number; completed_jobs_retained_s: number } }): { count: number; ageSeconds: number } {
  return { count: config.settler.completed_jobs_retained_max, ageSeconds: config.settler.completed_jobs_retained_s };
}

/**
 * The queue of one shard. Completed jobs are kept for a while (bull-board shows them, and chain
 * recovery re-applies them); failed jobs are kept forever, because a failed settlement job is a
 * hole in the shard's chain.
 */
export function createSettlementQueue(shard: string, options: SettlementQueueOptions): Queue {
  const retained = options.completedJobsRetained ?? COMPLETED_JOBS_RETAINED_DEFAULT;
  return new Queue(settlementQueueName(shard), {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      removeOnComplete: { age: retained.ageSeconds, count: retained.count },
      removeOnFail: false,
      attempts: 1,
    },
  });
}
