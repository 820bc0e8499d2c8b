/**
 * The overview's last hour: every `intervalMs` the dashboard records each shard's applied and
 * enqueued sequence, lag and queue depth in Redis (a sorted set per shard, scored by time,
 * trimmed to `SAMPLES_KEPT_MS`, so bounded at one hour / interval samples), and the page draws
 * its charts from them. In Redis rather than in memory, so a restarted dashboard (or a second
 * one) shows the same hour.
 */
import type { Redis } from 'ioredis';
import { overviewSamplesKey } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { ShardStatus } from './shards.js';

/** How far back samples are kept and charted, ms. */
export const SAMPLES_KEPT_MS = 3_600_000;

export interface ShardSample {
  /** Epoch ms when taken. */
  readonly t: number;
  readonly appliedSeq: bigint;
  readonly enqueuedSeq: bigint;
  readonly lag: bigint;
  readonly depth: number;
}

function encode(s: ShardSample): string {
  return JSON.stringify({ t: s.t, a: s.appliedSeq.toString(), e: s.enqueuedSeq.toString(), l: s.lag.toString(), d: s.depth });
}

function decode(member: string): ShardSample | undefined {
  try {
    const v = JSON.parse(member) as { t?: unknown; a?: unknown; e?: unknown; l?: unknown; d?: unknown };
    if (typeof v.t !== 'number' || typeof v.a !== 'string' || typeof v.e !== 'string' || typeof v.l !== 'string' || typeof v.d !== 'number') return undefined;
    if (![v.a, v.e, v.l].every((x) => /^\d{1,20}$/.test(x as string))) return undefined;
    return { t: v.t, appliedSeq: BigInt(v.a), enqueuedSeq: BigInt(v.e), lag: BigInt(v.l), depth: v.d };
  } catch {
    return undefined;
  }
}

/** Records one sample per shard and drops those older than an hour, in one MULTI. */
export async function recordSamples(redis: Redis, prefix: string, shards: readonly ShardStatus[], nowMs = Date.now()): Promise<void> {
  const multi = redis.multi();
  for (const s of shards) {
    const key = overviewSamplesKey(prefix, s.shard);
    multi.zadd(key, nowMs, encode({ t: nowMs, appliedSeq: s.appliedSeq ?? 0n, enqueuedSeq: s.enqueuedSeq ?? 0n, lag: s.lag, depth: s.depth }));
    multi.zremrangebyscore(key, '-inf', nowMs - SAMPLES_KEPT_MS);
    // Nobody samples any more: the key goes away with its last sample.
    multi.pexpire(key, SAMPLES_KEPT_MS);
  }
  await multi.exec();
}

/** The shard's samples since `sinceMs`, oldest first. */
export async function readSamples(redis: Redis, prefix: string, shard: string, sinceMs: number): Promise<ShardSample[]> {
  const members = await redis.zrangebyscore(overviewSamplesKey(prefix, shard), sinceMs, '+inf');
  return members.map(decode).filter((s): s is ShardSample => s !== undefined);
}

export interface RatePoint {
  readonly t: number;
  /** Applied sequence advance per second between this sample and the one before. */
  readonly perSecond: number;
}

/**
 * Settled messages per second between consecutive samples (applied-sequence advance / time;
 * messages when the shard's sequence has no holes). A watermark going back (a keyspace reset)
 * counts as 0, never negative.
 */
export function settledRates(samples: readonly ShardSample[]): RatePoint[] {
  const out: RatePoint[] = [];
  for (let i = 1; i < samples.length; i++) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    const seconds = (b.t - a.t) / 1000;
    if (seconds <= 0) continue;
    const advance = b.appliedSeq > a.appliedSeq ? Number(b.appliedSeq - a.appliedSeq) : 0;
    out.push({ t: b.t, perSecond: advance / seconds });
  }
  return out;
}

/** Samples every `intervalMs` until stopped; a failed sample is logged and the next one tried. */
export class OverviewSampler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly sample: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.sample()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'overview sample failed'))
        .finally(() => {
          this.running = undefined;
          if (this.closing === undefined) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    tick();
  }

  /** Idempotent; waits for a sample under way. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      await this.running;
    })();
    return this.closing;
  }
}
