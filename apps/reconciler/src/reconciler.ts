/**
 * The reconciler process in one call: Cassandra client, Redis connection, the reconcile queue
 * with its scheduler, the worker, metrics and heartbeat. `close()` stops them in reverse order,
 * each even if an earlier one fails; a run in progress finishes its current page first.
 */
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type cassandra from 'cassandra-driver';
import type { Registry } from 'prom-client';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, RECONCILIATION_QUEUE } from '@settlement/domain';
import {
  DeadLetterRepository,
  ReconciliationReader,
  ReconciliationStore,
  SequenceGapRepository,
  connectWhenReachable,
  createScyllaClient,
  scyllaOptionsFromConfig,
} from '@settlement/scylla';
import { ChangedUsers, createRedisConnection, runCloseSteps, startHeartbeat, type CloseStep, type Logger } from '@settlement/runtime';
import { CorrectionSender } from './corrections.js';
import { createReconcilerMetrics, type ReconcilerMetrics } from './metrics.js';
import { createReconcileProcessor } from './processor.js';
import { createReconcileQueue, ensureReconcileSchedule } from './reconcile-queue.js';
import { readEnqueuedHeads } from './settlement-cut.js';
import type { ReconcileDeps, ReconcileSummary } from './run.js';

export interface StartReconcilerOptions {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  /** Registry for the metrics; a fresh one by default. */
  readonly metrics?: ReconcilerMetrics;
  /** The process's Node.js metrics, published with the reconciler's (runApp's processMetrics). */
  readonly processMetrics?: Registry;
}

export interface RunningReconciler {
  readonly metrics: ReconcilerMetrics;
  /** Idempotent: returns the same promise when called again. */
  close(): Promise<void>;
}

/** The Cassandra-side dependencies of a run, for a client the caller owns. */
export function reconcileDeps(
  config: Readonly<SettlementConfig>,
  logger: Logger,
  client: cassandra.Client,
  extra: Pick<ReconcileDeps, 'corrections' | 'metrics' | 'enqueuedHeads' | 'changedUsers'> = {},
): ReconcileDeps {
  const ks = config.scylladb.keyspace;
  return {
    config,
    logger,
    reader: new ReconciliationReader(client, ks, { fetchSize: config.reconciliation.history_page_rows }),
    store: new ReconciliationStore(client, ks),
    gaps: new SequenceGapRepository(client, ks),
    deadLetters: new DeadLetterRepository(client, ks),
    ...extra,
  };
}

/** Runs `steps` in order, each even if one before failed; rethrows the first failure. */
async function runAll(steps: readonly CloseStep[], logger: Logger): Promise<void> {
  const failed = await runCloseSteps(steps, logger);
  if (failed !== undefined) throw failed;
}

export async function startReconciler(options: StartReconcilerOptions): Promise<RunningReconciler> {
  const { config, logger } = options;
  const metrics = options.metrics ?? createReconcilerMetrics();
  const client = createScyllaClient(scyllaOptionsFromConfig(config));
  let connection: Redis | undefined;
  try {
    await connectWhenReachable(client, { logger, retryMaxMs: 5_000 });
    connection = createRedisConnection(config.redis.url);
    const queue = createReconcileQueue({ connection, prefix: config.redis.prefix });
    // One run at a time across all replicas: two fix runs at once would correct a row twice.
    await queue.setGlobalConcurrency(1);
    await ensureReconcileSchedule(queue, config, logger);

    const corrections = new CorrectionSender({ connection, prefix: config.redis.prefix, logger });
    const shards = new MarketCatalog(config).shards;
    const redis = connection;
    const deps = reconcileDeps(config, logger, client, {
      corrections,
      metrics,
      enqueuedHeads: () => readEnqueuedHeads(redis, config.redis.prefix, shards),
      changedUsers: new ChangedUsers({ redis, prefix: config.redis.prefix }),
    });
    const abort = new AbortController();
    let activeJobId: string | undefined;
    let last: Pick<ReconcileSummary, 'jobId' | 'status' | 'errors' | 'finishedAt'> | undefined;
    const worker = new Worker(RECONCILIATION_QUEUE, createReconcileProcessor(deps, abort.signal, (id) => (activeJobId = id)), {
      connection,
      prefix: config.redis.prefix,
      concurrency: 1,
      lockDuration: config.reconciliation.lock_duration_ms,
      // A reconciler that dies mid-run leaves a stalled job; run it once more, not forever.
      maxStalledCount: 1,
      autorun: true,
    });
    worker.on('completed', (job, result: ReconcileSummary) => {
      last = { jobId: result.jobId, status: result.status, errors: result.errors, finishedAt: result.finishedAt };
      logger.debug({ jobId: job.id }, 'reconcile job completed');
    });
    worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, err: err.message }, 'reconcile job failed'));
    worker.on('error', (err) => logger.error({ err }, 'reconcile worker error'));
    await worker.waitUntilReady();

    const heartbeat = startHeartbeat({
      redis: connection,
      prefix: config.redis.prefix,
      app: 'reconciler',
      registry: metrics.registry,
      processMetrics: options.processMetrics,
      intervalMs: config.reconciliation.heartbeat_interval_ms,
      status: () => ({ activeJobId: activeJobId ?? null, lastRun: last ?? null }),
    });
    logger.info({ queue: RECONCILIATION_QUEUE, prefix: config.redis.prefix, instanceId: heartbeat.instanceId }, 'reconciler started');

    let closing: Promise<void> | undefined;
    return {
      metrics,
      close() {
        closing ??= (async () => {
          abort.abort();
          await runAll(
            [
              ['worker', () => worker.close()],
              ['heartbeat', () => heartbeat.stop()],
              ['corrections', () => corrections.close()],
              ['queue', () => queue.close()],
              ['redis', () => redis.quit()],
              ['cassandra', () => client.shutdown()],
            ],
            logger,
          );
        })();
        return closing;
      },
    };
  } catch (error) {
    connection?.disconnect();
    await client.shutdown().catch(() => undefined);
    throw error;
  }
}
