/**
 * One reconciliation without a queue (the CLI, the chaos run): it opens its own clients, runs,
 * and closes them. Redis is read for the ingestor's enqueued sequences (to re-check negative
 * balances on a cut) and, with fix, to send corrections to the settlers.
 */
import { randomUUID } from 'node:crypto';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, decodeReconcileJob, type ReconcileJobPayload } from '@settlement/domain';
import { createScyllaClient, scyllaOptionsFromConfig } from '@settlement/scylla';
import { ChangedUsers, createRedisConnection, type Logger } from '@settlement/runtime';
import { CorrectionSender } from './corrections.js';
import { reconcileDeps } from './reconciler.js';
import { readEnqueuedHeads } from './settlement-cut.js';
import { runReconciliation, type ReconcileSummary } from './run.js';

export interface ReconcileOnceOptions {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  /** Validated here like a job payload (a wrong one throws a DomainError naming the field). */
  readonly request: ReconcileJobPayload;
  /** Id in reconciliation_jobs; `direct-<uuid>` by default. */
  readonly jobId?: string;
  /** Default: the request's trigger, else "direct". */
  readonly trigger?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: Parameters<typeof runReconciliation>[2]['onProgress'];
}

export async function reconcileOnce(options: ReconcileOnceOptions): Promise<ReconcileSummary> {
  const request = decodeReconcileJob(options.request);
  const client = createScyllaClient(scyllaOptionsFromConfig(options.config));
  const redis = createRedisConnection(options.config.redis.url);
  const corrections = request.fix ? new CorrectionSender({ connection: redis, prefix: options.config.redis.prefix, logger: options.logger }) : undefined;
  const shards = new MarketCatalog(options.config).shards;
  try {
    await client.connect();
    const deps = reconcileDeps(options.config, options.logger, client, {
      corrections,
      enqueuedHeads: () => readEnqueuedHeads(redis, options.config.redis.prefix, shards),
      changedUsers: new ChangedUsers({ redis, prefix: options.config.redis.prefix }),
    });
    return await runReconciliation(deps, request, {
      jobId: options.jobId ?? `direct-${randomUUID()}`,
      trigger: options.trigger ?? request.trigger ?? 'direct',
      signal: options.signal,
      onProgress: options.onProgress,
    });
  } finally {
    await corrections?.close();
    await redis.quit().catch(() => undefined);
    await client.shutdown();
  }
}
