/** The settler's Prometheus metrics, in a registry of its own (the heartbeat publishes it). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface SettlerMetrics {
  readonly registry: Registry;
  /** LOGGED BATCHes written, per shard and kind (settle, correct). */
  readonly batches: Counter<'shard' | 'kind'>;
  /** Messages handled, per shard and outcome (applied, skipped, already_settled, dead_lettered). */
  readonly messages: Counter<'shard' | 'outcome'>;
  readonly batchStatements: Histogram<'shard'>;
  readonly writeLatency: Histogram<'shard'>;
  /** Time to read the watermark and the job's trade ids (in parallel), retries included. */
  readonly readLatency: Histogram<'shard'>;
  /** Time to read the balance rows a job needs that the cache does not hold (jobs that read none are not counted). */
  readonly rowLoadLatency: Histogram<'shard'>;
  /** Time in the job handler, reads and retries included. */
  readonly jobDuration: Histogram<'shard'>;
  /** Failed attempts retried in place, per shard, operation and error kind. */
  readonly retries: Counter<'shard' | 'op' | 'kind'>;
  readonly deadLetters: Counter<'shard' | 'code'>;
  readonly jobs: Counter<'shard' | 'name'>;
  readonly cacheReloads: Counter<'shard'>;
  /** Jobs whose reads were done ahead, while the previous batch was written. */
  readonly prefetchHits: Counter<'shard'>;
  readonly chainHalts: Counter<'shard'>;
  readonly chainRecoveries: Counter<'shard'>;
  /** Jobs that wrote the watermark, applied again after a doubt about storage (settle-step.ts). */
  readonly watermarkJobReapplies: Counter<'shard'>;
  /** 1 while the shard waits for a range no retained job holds (see ShardSettler.halted). */
  readonly chainHalted: Gauge<'shard'>;
  /** Times storage was found below what this process saw acknowledged (a node lost its commit-log tail). */
  readonly storageRollbacks: Counter<'shard'>;
  readonly lastSeq: Gauge<'shard'>;
  /** Last sequence enqueued by the ingestor minus the shard watermark. */
  readonly lag: Gauge<'shard'>;
  readonly cacheRows: Gauge<'shard'>;
}

export function createSettlerMetrics(): SettlerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    batches: new Counter({ name: 'settler_batches_total', help: 'LOGGED BATCHes written', labelNames: ['shard', 'kind'], registers }),
    messages: new Counter({ name: 'settler_messages_total', help: 'Messages handled, by outcome', labelNames: ['shard', 'outcome'], registers }),
    batchStatements: new Histogram({
      name: 'settler_batch_statements',
      help: 'Statements per LOGGED BATCH',
      labelNames: ['shard'],
      buckets: [8, 16, 32, 64, 128, 256, 384, 512, 768, 1024],
      registers,
    }),
    writeLatency: new Histogram({
      name: 'settler_write_latency_seconds',
      help: 'Time to write one LOGGED BATCH, retries included',
      labelNames: ['shard'],
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers,
    }),
    readLatency: new Histogram({
      name: 'settler_read_latency_seconds',
      help: 'Time to read the shard watermark and the job trade ids before planning',
      labelNames: ['shard'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    }),
    rowLoadLatency: new Histogram({
      name: 'settler_row_load_seconds',
      help: 'Time to read the balance rows a job touches that the cache does not hold (one read per job that needs it)',
      labelNames: ['shard'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    }),
    jobDuration: new Histogram({
      name: 'settler_job_duration_seconds',
      help: 'Time to handle one job, reads, writes and retries included',
      labelNames: ['shard'],
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers,
    }),
    retries: new Counter({ name: 'settler_retries_total', help: 'Failed Cassandra/Redis attempts retried in place', labelNames: ['shard', 'op', 'kind'], registers }),
    deadLetters: new Counter({ name: 'settler_dead_letters_total', help: 'Messages or jobs dead-lettered', labelNames: ['shard', 'code'], registers }),
    jobs: new Counter({ name: 'settler_jobs_total', help: 'Jobs processed', labelNames: ['shard', 'name'], registers }),
    cacheReloads: new Counter({ name: 'settler_cache_reloads_total', help: 'Row cache dropped because another writer moved the shard on', labelNames: ['shard'], registers }),
    prefetchHits: new Counter({ name: 'settler_prefetch_hits_total', help: 'Jobs whose reads were done while the previous batch was written', labelNames: ['shard'], registers }),
    chainHalts: new Counter({ name: 'settler_chain_halts_total', help: 'Checks that found an earlier job missing and not recoverable', labelNames: ['shard'], registers }),
    chainRecoveries: new Counter({ name: 'settler_chain_recoveries_total', help: 'Failed jobs applied before a later job', labelNames: ['shard'], registers }),
    watermarkJobReapplies: new Counter({ name: 'settler_watermark_job_reapplies_total', help: 'Jobs that wrote the watermark applied again after a doubt about storage', labelNames: ['shard'], registers }),
    chainHalted: new Gauge({ name: 'settler_chain_halted', help: '1 while the shard waits for messages no retained job holds', labelNames: ['shard'], registers, aggregator: 'max' }),
    storageRollbacks: new Counter({ name: 'settler_storage_rollbacks_total', help: 'Storage found behind batches this settler saw acknowledged', labelNames: ['shard'], registers }),
    // Every replica reports the same shard: the dashboard aggregates across replicas, so the
    // watermark is the highest any replica saw and the lag the lowest, not their sum.
    lastSeq: new Gauge({ name: 'settler_last_seq', help: 'Shard watermark (last settled sequence)', labelNames: ['shard'], registers, aggregator: 'max' }),
    lag: new Gauge({ name: 'settler_lag_messages', help: 'Last enqueued sequence minus the shard watermark', labelNames: ['shard'], registers, aggregator: 'min' }),
    cacheRows: new Gauge({ name: 'settler_cache_rows', help: 'Balance rows cached', labelNames: ['shard'], registers }),
  };
}
