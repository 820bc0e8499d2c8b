/**
 * What the overview page shows, gathered in one call (also served as JSON at /v1/overview): the
 * shards now (lag, depth, settler, halts), their last hour from the samples, the last
 * reconciliations with the errors they found, and the dead letters grouped by reason.
 */
import type { Job } from 'bullmq';
import type { Ops } from './context.js';
import { deadLetterShards, listDeadLetters } from './dead-letters.js';
import { listFindingViews, type FindingView } from './findings.js';
import { readSamples, SAMPLES_KEPT_MS, settledRates, type RatePoint, type ShardSample } from './overview-samples.js';
import { shardStatuses, type ShardStatus } from './shards.js';

/** Bounds of what one overview reads. */
export const OVERVIEW_LIMITS = {
  /** Reconciliations listed, newest first. */
  reconciliationsMax: 8,
  /** Findings listed per reconciliation. */
  findingsPerRunMax: 20,
  /** Dead letters read (newest first, over every shard) to group by reason. */
  deadLettersReadMax: 2_000,
  /** Reason groups listed. */
  reasonGroupsMax: 20,
} as const;

export interface ShardHour {
  readonly shard: string;
  readonly samples: readonly ShardSample[];
  readonly settledPerSecond: readonly RatePoint[];
  /** Mean settled messages/s over the samples of the last minute; null with fewer than two. */
  readonly settledPerSecondLastMinute: number | null;
}

export interface ReconciliationSummary {
  readonly id: string;
  /** BullMQ state of the job. */
  readonly state: string;
  readonly trigger: string | null;
  readonly mode: string | null;
  readonly enqueuedAt: Date;
  readonly finishedAt: Date | null;
  readonly usersChecked: number | null;
  /** Balance errors the run counted (reconciliation_jobs.errors); null before it finished. */
  readonly errors: number | null;
  readonly failedReason: string | null;
  readonly findings: readonly FindingView[];
  readonly findingsTruncated: boolean;
}

export interface DeadLetterReason {
  readonly shard: string;
  readonly field: string | null;
  readonly reason: string;
  readonly count: number;
  readonly newestAt: Date | null;
}

export interface Overview {
  readonly generatedAt: Date;
  readonly sampleIntervalMs: number;
  readonly shards: readonly ShardStatus[];
  readonly hour: readonly ShardHour[];
  readonly reconciliations: readonly ReconciliationSummary[];
  readonly deadLetters: { readonly read: number; readonly truncated: boolean; readonly byReason: readonly DeadLetterReason[] };
}

export async function buildOverview(ops: Ops, nowMs = Date.now()): Promise<Overview> {
  const [shards, hour, reconciliations, deadLetters] = await Promise.all([
    shardStatuses({ redis: ops.redis, prefix: ops.config.redis.prefix, queues: ops.settlementQueues, readWatermarks: () => ops.watermarks.list() }),
    shardHours(ops, nowMs),
    lastReconciliations(ops),
    deadLettersByReason(ops),
  ]);
  return { generatedAt: new Date(nowMs), sampleIntervalMs: ops.config.dashboard.overview_sample_interval_ms, shards, hour, reconciliations, deadLetters };
}

async function shardHours(ops: Ops, nowMs: number): Promise<ShardHour[]> {
  return Promise.all(
    ops.settlementQueues.map(async ({ shard }) => {
      const samples = await readSamples(ops.redis, ops.config.redis.prefix, shard, nowMs - SAMPLES_KEPT_MS);
      const settledPerSecond = settledRates(samples);
      const lastMinute = samples.filter((s) => s.t >= nowMs - 60_000);
      const first = lastMinute[0];
      const last = lastMinute[lastMinute.length - 1];
      const perSecond =
        first !== undefined && last !== undefined && last.t > first.t
          ? Number(last.appliedSeq > first.appliedSeq ? last.appliedSeq - first.appliedSeq : 0n) / ((last.t - first.t) / 1000)
          : null;
      return { shard, samples, settledPerSecond, settledPerSecondLastMinute: perSecond };
    }),
  );
}

async function lastReconciliations(ops: Ops): Promise<ReconciliationSummary[]> {
  const jobs = (await ops.reconcileQueue.getJobs(['active', 'waiting', 'delayed', 'completed', 'failed'], 0, OVERVIEW_LIMITS.reconciliationsMax * 2)) as Job[];
  const newest = jobs
    .filter((j): j is Job & { id: string } => j?.id !== undefined)
    .sort((a, b) => b.timestamp - a.timestamp)
    .slice(0, OVERVIEW_LIMITS.reconciliationsMax);
  return Promise.all(
    newest.map(async (job) => {
      const [state, record, found] = await Promise.all([
        job.getState(),
        ops.reconciliations.getJob(job.id),
        listFindingViews(ops.reconciliations, ops.catalog, job.id, OVERVIEW_LIMITS.findingsPerRunMax),
      ]);
      const data = (job.data ?? {}) as { trigger?: unknown; mode?: unknown };
      return {
        id: job.id,
        state,
        trigger: record?.trigger ?? (typeof data.trigger === 'string' ? data.trigger : null),
        mode: record?.mode ?? (typeof data.mode === 'string' ? data.mode : null),
        enqueuedAt: new Date(job.timestamp),
        finishedAt: job.finishedOn === undefined ? (record?.finishedAt ?? null) : new Date(job.finishedOn),
        usersChecked: record?.usersChecked ?? null,
        errors: record === undefined || record.status === 'running' ? null : record.errors,
        failedReason: job.failedReason || null,
        findings: found.findings,
        findingsTruncated: found.truncated,
      };
    }),
  );
}

async function deadLettersByReason(ops: Ops): Promise<Overview['deadLetters']> {
  const letters = await listDeadLetters(ops.deadLetters, deadLetterShards(ops.catalog.shards), OVERVIEW_LIMITS.deadLettersReadMax);
  const groups = new Map<string, { shard: string; field: string | null; reason: string; count: number; newestAt: Date | null }>();
  for (const l of letters) {
    const key = `${l.shard}\u0000${l.field ?? ''}\u0000${l.reason}`;
    const group = groups.get(key) ?? { shard: l.shard, field: l.field ?? null, reason: l.reason, count: 0, newestAt: null };
    group.count += 1;
    if (l.createdAt !== undefined && (group.newestAt === null || l.createdAt > group.newestAt)) group.newestAt = l.createdAt;
    groups.set(key, group);
  }
  const byReason = [...groups.values()].sort((a, b) => b.count - a.count).slice(0, OVERVIEW_LIMITS.reasonGroupsMax);
  return { read: letters.length, truncated: letters.length >= OVERVIEW_LIMITS.deadLettersReadMax, byReason };
}
