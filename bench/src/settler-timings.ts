import type { Redis } from 'ioredis';

/** Running totals of a settler histogram, per shard, summed over every settler process. */
type Totals = Map<string, { sum: number; count: number }>;

export interface SettlerTimings {
  /** settler_write_latency_seconds: one LOGGED BATCH, sent → acknowledged. */
  readonly write: Totals;
  /** settler_job_duration_seconds: one job in the settler's processor. */
  readonly job: Totals;
  /** settler_read_latency_seconds: the shard state and the job's trade ids, before planning. */
  readonly read: Totals;
  /** settler_row_load_seconds: the balance rows a job needs that the cache does not hold. */
  readonly rowLoad: Totals;
}

/**
 * Per shard, over an interval: batches written and their mean latency, mean job time, mean read
 * time per job, and row loads (jobs that read uncached rows) with their mean time.
 */
export type ShardTimings = Record<
  string,
  {
    batches: number;
    writeMeanMs: number;
    /** Jobs handled, and the mean time per job spent writing its batches (one after the other). */
    jobs: number;
    writesPerJobMs: number;
    jobMeanMs: number;
    readMeanMs: number;
    rowLoads: number;
    rowLoadMeanMs: number;
  }
>;

interface MetricJson {
  readonly name: string;
  readonly values: readonly { readonly metricName?: string; readonly labels: Record<string, string | number>; readonly value: number }[];
}

const HISTOGRAMS = { write: 'settler_write_latency_seconds', job: 'settler_job_duration_seconds', read: 'settler_read_latency_seconds', rowLoad: 'settler_row_load_seconds' } as const;

/**
 * Reads the settlers' histogram totals from their heartbeats in Redis (published every few
 * seconds, see @settlement/runtime startHeartbeat): the settler's own view of where a job's
 * time goes, without scraping each process.
 */
export async function readSettlerTimings(redis: Redis, prefix: string): Promise<SettlerTimings> {
  const timings: SettlerTimings = { write: new Map(), job: new Map(), read: new Map(), rowLoad: new Map() };
  const keys = (await redis.keys(`${prefix}:heartbeat:*`)).filter((k) => k.includes(':settler:'));
  const docs = keys.length === 0 ? [] : await redis.mget(...keys);
  for (const doc of docs) {
    if (doc === null) continue;
    const metrics = (JSON.parse(doc) as { metrics?: MetricJson[] }).metrics ?? [];
    for (const [which, name] of Object.entries(HISTOGRAMS) as [keyof SettlerTimings, string][]) {
      for (const value of metrics.find((m) => m.name === name)?.values ?? []) {
        const part = value.metricName === `${name}_sum` ? 'sum' : value.metricName === `${name}_count` ? 'count' : undefined;
        if (part === undefined) continue;
        const shard = String(value.labels['shard']);
        const totals = timings[which].get(shard) ?? { sum: 0, count: 0 };
        totals[part] += value.value;
        timings[which].set(shard, totals);
      }
    }
  }
  return timings;
}

export function timingsBetween(before: SettlerTimings, after: SettlerTimings): ShardTimings {
  const out: ShardTimings = {};
  const mean = (which: keyof SettlerTimings, shard: string) => {
    const a = after[which].get(shard);
    const b = before[which].get(shard) ?? { sum: 0, count: 0 };
    const count = (a?.count ?? 0) - b.count;
    return { count, meanMs: count > 0 ? Math.round((((a?.sum ?? 0) - b.sum) / count) * 10_000) / 10 : Number.NaN };
  };
  for (const shard of [...after.write.keys()].sort()) {
    const write = mean('write', shard);
    const rowLoad = mean('rowLoad', shard);
    const job = mean('job', shard);
    if (write.count > 0) {
      out[shard] = {
        batches: write.count,
        writeMeanMs: write.meanMs,
        jobs: job.count,
        writesPerJobMs: job.count > 0 ? Math.round((write.meanMs * write.count * 10) / job.count) / 10 : Number.NaN,
        jobMeanMs: job.meanMs,
        readMeanMs: mean('read', shard).meanMs,
        rowLoads: rowLoad.count,
        rowLoadMeanMs: rowLoad.meanMs,
      };
    }
  }
  return out;
}
