/**
 * bull-board over the service's queues. Settlement queues are read-only: retrying, cleaning or
 * deleting a settlement job from a UI would break the shard's chain (docs/ARCHITECTURE.md), so their
 * adapters use readOnlyMode, which makes bull-board answer 405 to every mutating route. The
 * reconciliation queue is writable so an operator can add a reconcile job from the UI; its
 * job-data schema (from the domain's zod schema) guides the add-job form. Dead letters live in
 * Cassandra (settle dead-letters list), not in a queue.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Router } from 'express';
import { z } from 'zod';
import { reconcileJobSchema } from '@settlement/domain';

export interface BoardOptions {
  /** Path the board is mounted at, e.g. /queues. */
  readonly basePath: string;
  /** One queue per shard, in display order. */
  readonly settlementQueues: ReadonlyArray<{ shard: string; queue: Queue }>;
  readonly reconcileQueue: Queue;
  /** Users in a sampled run, offered in the add-job form (config reconciliation.sample_size). */
  readonly sampleSize: number;
}

type JsonSchema = { oneOf?: Array<{ properties?: Record<string, Record<string, unknown>> }> } & Record<string, unknown>;

/**
 * JSON Schema of a reconcile job's data, as a producer writes it (user ids as strings). The
 * add-job form starts from the first variant's defaults, so the sample variant gets a valid
 * size (config sample_size) and every variant the trigger "dashboard".
 */
export function reconcileJobDataSchema(sampleSize: number): Record<string, unknown> {
  const schema = z.toJSONSchema(reconcileJobSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  for (const variant of schema.oneOf ?? []) {
    const properties = variant.properties ?? {};
    if (properties['size'] !== undefined) properties['size']['default'] = sampleSize;
    if (properties['trigger'] !== undefined) properties['trigger']['default'] = 'dashboard';
  }
  return schema;
}

export function createBoardRouter(options: BoardOptions): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(options.basePath);
  const queues = [
    ...options.settlementQueues.map(
      ({ shard, queue }) =>
        new BullMQAdapter(queue, {
          readOnlyMode: true,
          allowRetries: false,
          description: `Settlement jobs of shard ${shard}: read-only, a job is never retried or removed by hand`,
        }),
    ),
    new BullMQAdapter(options.reconcileQueue, {
      readOnlyMode: false,
      description: 'Reconciliation: add a job named "reconcile" with data {"mode":"sample","size":100} or {"mode":"users","userIds":["42"]} or {"mode":"full"}',
      jobDataSchema: reconcileJobDataSchema(options.sampleSize),
    }),
  ];
  createBullBoard({
    queues,
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Settlement', pollingInterval: { forceInterval: 2_000 } } },
  });
  return serverAdapter.getRouter() as Router;
}
