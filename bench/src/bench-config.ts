import path from 'node:path';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { ROOT, type LocalRing } from '@settlement/tools';
import type { BenchOptions } from './bench-options.js';
import { ringScyllaSection } from './chaos-ring.js';

/**
 * The repository's config for one side of the bench: its own keyspace and queue prefix, the
 * flags' shards and batch size, reconciliation off. With a ring (--nodes 3), pointed at it.
 */
export function benchConfig(options: BenchOptions, ring: LocalRing | undefined, keyspace: string, prefix: string): Readonly<SettlementConfig> {
  const base = loadConfig({ cwd: ROOT });
  const plain = JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  return parseConfig({
    ...plain,
    scylladb: { ...plain['scylladb'], keyspace, ...(ring === undefined ? {} : ringScyllaSection(ring)) },
    // On a ring: its own queue prefix and ingestor port, so it never meets a single-node bench.
    redis: { ...plain['redis'], prefix: ring === undefined ? prefix : `${prefix.slice(0, -1)}ring}` },
    ...(ring === undefined ? {} : { zmq: { ...plain['zmq'], settlement_port: options.ringPort - 2042 + 1557 } }),
    symbols: (plain['symbols'] as unknown as unknown[]).slice(0, options.shardCount),
    batch: { ...plain['batch'], max_messages: options.batchMessages, ...(options.maxWaitMs === undefined ? {} : { max_wait_ms: options.maxWaitMs }) },
    // A job of `batch` messages stays one LOGGED BATCH, like the raw path's batches.
    settler: { ...plain['settler'], batch_statements_max: Math.max(600, options.batchMessages * 12) },
    reconciliation: { ...plain['reconciliation'], enabled: false },
    log_level: 'warn',
    data_dir: path.join(base.data_dir, 'bench'),
  });
}
