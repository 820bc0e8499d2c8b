/**
 * Per-shard progress: the last sequence the ingestor enqueued (Redis), the last one the
 * settler applied (shard_watermarks), the lag between them, the shard queue's job counts, and
 * which settler process settles it (its heartbeat).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SETTLER_APP, decodeSettlerShardHeartbeat, ingestPositionKey } from '@settlement/domain';
import type { Heartbeat } from '@settlement/runtime';
import type { ShardWatermark } from '@settlement/scylla';
import { readHeartbeats } from './heartbeats.js';


const COUNTED_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children', 'failed', 'completed'] as const;
type CountedState = (typeof COUNTED_STATES)[number];

export interface ShardStatus {
  readonly shard: string;
  /** Last sequence applied by the settler (shard_watermarks.last_seq); null before the first. */
  readonly appliedSeq: bigint | null;
  /** Last sequence enqueued by the ingestor; null before the first. */
  readonly enqueuedSeq: bigint | null;
  /** enqueuedSeq − appliedSeq, in sequence numbers (messages when the stream has no holes); ≥ 0. */
  readonly lag: bigint;
  readonly jobs: Readonly<Record<CountedState, number>>;
  /** Jobs not yet finished: waiting + active + delayed + prioritized + paused. */
  readonly depth: number;
  /** Workers connected to the shard's queue; null when Redis does not allow CLIENT LIST. */
  readonly workers: number | null;
  /**
   * Settler processes (host:pid) whose last heartbeat says they hold the shard's lease, i.e.
   * settle it; empty while none does (no settler, or a hand-over between two heartbeats).
   */
  readonly settledBy: readonly string[];
  /**
   * Set while a settler reports the shard halted: it waits for the messages after `afterSeq`
   * through `throughSeq`, which no retained job holds (the engine must re-send them); null otherwise.
   */
  readonly halted: HaltedShard | null;
  /** Settlement batches written so far, and when the last one was. */
  readonly batchCount: bigint;
  readonly lastJobId: string | null;
  readonly updatedAt: Date | null;
}

export interface HaltedShard {
  readonly afterSeq: bigint;
  readonly throughSeq: bigint;
  /** The settler process (host:pid) whose heartbeat reports it. */
  readonly reportedBy: string;
}

export interface ShardStatusDeps {
  readonly redis: Redis;
  readonly prefix: string;
  readonly queues: ReadonlyArray<{ shard: string; queue: Queue }>;
  /** Every shard's watermark (WatermarkRepository.list). */
  readonly readWatermarks: () => Promise<readonly ShardWatermark[]>;
}

export async function shardStatuses(deps: ShardStatusDeps): Promise<ShardStatus[]> {
  const [marks, enqueued, heartbeats] = await Promise.all([deps.readWatermarks(), deps.redis.hgetall(ingestPositionKey(deps.prefix)), readHeartbeats(deps.redis, deps.prefix)]);
  const watermarks = new Map(marks.map((m) => [m.shard, m]));
  const settlers = settlersByShard(heartbeats.heartbeats);
  const halts = haltedByShard(heartbeats.heartbeats);
  return Promise.all(
    deps.queues.map(async ({ shard, queue }) => {
      const [counts, workers] = await Promise.all([
        queue.getJobCounts(...COUNTED_STATES),
        queue.getWorkersCount().catch(() => null),
      ]);
      const jobs = Object.fromEntries(COUNTED_STATES.map((s) => [s, counts[s] ?? 0])) as Record<CountedState, number>;
      const mark = watermarks.get(shard);
      const appliedSeq = mark?.lastSeq ?? null;
      const enqueuedText = enqueued[shard];
      const enqueuedSeq = enqueuedText !== undefined && /^\d+$/.test(enqueuedText) ? BigInt(enqueuedText) : null;
      const lag = computeLag(enqueuedSeq, appliedSeq);
      const depth = jobs.waiting + jobs.active + jobs.delayed + jobs.prioritized + jobs.paused;
      return {
        shard, appliedSeq, enqueuedSeq, lag, jobs, depth, workers,
        settledBy: settlers.get(shard) ?? [],
        halted: halts.get(shard) ?? null,
        batchCount: mark?.batchCount ?? 0n,
        lastJobId: mark?.lastJobId ?? null,
        updatedAt: mark?.updatedAt ?? null,
      };
    }),
  );
}

/** Per shard, the settler processes (host:pid) whose heartbeat status says they hold its lease. */
export function settlersByShard(heartbeats: readonly Heartbeat[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const beat of heartbeats) {
    if (beat.app !== SETTLER_APP) continue;
    for (const [shard, status] of Object.entries(beat.status)) {
      if (decodeSettlerShardHeartbeat(status)?.leaseHeld !== true) continue;
      const list = out.get(shard) ?? [];
      list.push(`${beat.hostname}:${beat.pid}`);
      out.set(shard, list);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

/**
 * Per shard, the halt a settler's heartbeat reports (`status[shard].halted`, decimal strings);
 * the lease holder's when several report one, else the widest range.
 */
export function haltedByShard(heartbeats: readonly Heartbeat[]): Map<string, HaltedShard> {
  const out = new Map<string, HaltedShard & { leaseHeld: boolean }>();
  for (const beat of heartbeats) {
    if (beat.app !== SETTLER_APP) continue;
    for (const [shard, status] of Object.entries(beat.status)) {
      const report = decodeSettlerShardHeartbeat(status);
      if (report?.halted === undefined) continue;
      const found = { ...report.halted, reportedBy: `${beat.hostname}:${beat.pid}`, leaseHeld: report.leaseHeld };
      const known = out.get(shard);
      const better = known === undefined || (found.leaseHeld && !known.leaseHeld) || (found.leaseHeld === known.leaseHeld && found.throughSeq > known.throughSeq);
      if (better) out.set(shard, found);
    }
  }
  return new Map([...out].map(([shard, { leaseHeld: _held, ...halt }]) => [shard, halt]));
}

/** Never negative: the watermark can be ahead when the ingestor's hash was reset. */
export function computeLag(enqueuedSeq: bigint | null, appliedSeq: bigint | null): bigint {
  const lag = (enqueuedSeq ?? 0n) - (appliedSeq ?? 0n);
  return lag > 0n ? lag : 0n;
}

/** One sentence per halted shard, for the CLI and the overview page. */
export function haltedWarnings(shards: readonly ShardStatus[]): string[] {
  return shards
    .filter((s) => s.halted !== null)
    .map(
      (s) =>
        `HALTED: shard ${s.shard} waits for the messages after ${s.halted!.afterSeq} through ${s.halted!.throughSeq}, which no retained job holds ` +
        `(reported by ${s.halted!.reportedBy}); the engine must re-send them (README "When a shard halts")`,
    );
}
