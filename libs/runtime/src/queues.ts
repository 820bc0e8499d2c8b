import { Queue, type ConnectionOptions } from 'bullmq';
import { settlementQueueName } from '@settlement/domain';

/** Options every settlement queue is created with. */
export interface SettlementQueueOptions {
  readonly connection: ConnectionOptions;
  /** BullMQ key prefix, a Redis Cluster hash tag such as {settlement}. */
  readonly prefix: string;
}

/**
 * The queue of one shard. Completed jobs are kept for a while (bull-board shows them); failed
 * jobs are kept forever, because a failed settlement job is a hole in the shard's chain.
 */
export function createSettlementQueue(shard: string, options: SettlementQueueOptions): Queue {
  return new Queue(settlementQueueName(shard), {
    connection: options.connection,
    prefix: options.prefix,
    defaultJobOptions: {
      removeOnComplete: { age: 3600, count: 2000 },
      removeOnFail: false,
      attempts: 1,
    },
  });
}
