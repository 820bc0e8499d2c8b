/**
 * Whether this process still holds the BullMQ lock of the job in hand, checked before a further
 * chunk of the job is written (while the chunk before it is written). It is not what keeps a
 * stale writer out — its batches lose by their older fencing epoch (libs/domain fencing.ts) —
 * only what stops one early: a writer paused past its lock, or one whose lock went with a Redis
 * that came back empty.
 */
import type { Redis } from 'ioredis';

/**
 * Within one job, how long a check that found the lock ours stands before the next chunk checks
 * again, ms. The first further chunk of a job always checks (a lock gone with a Redis that came
 * back empty); after that, a lock seen held a moment ago is held still unless this process
 * stalled, which the monotonic clock shows. One GET per chunk was 1.3 % of a settler's CPU at the
 * closed-loop maximum, where a job is written in four or five chunks within ~50 ms.
 */
export const LOCK_CHECK_INTERVAL_MS = 1_000;

export interface JobLockCheckDeps {
  readonly shard: string;
  /** The Redis key of a job of the shard's queue (Queue.toKey). */
  readonly jobKey: (jobId: string) => string;
  readonly redis: () => Promise<Redis>;
  /** Runs a Redis read, retried in place while Redis is away. */
  readonly retryRedis: <T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown>) => Promise<T>;
}

export class JobLockCheck {
  /** The job in hand and its lock token; undefined when it came without one (tests, recovery). */
  private lock: { readonly jobId: string; readonly token: string } | undefined;
  /** When a check last found that lock ours (performance.now()); undefined until the job's first check. */
  private seenHeldAtMs: number | undefined;

  constructor(private readonly deps: JobLockCheckDeps) {}

  /** A new job is in hand. */
  take(jobId: string, token: string | undefined): void {
    this.lock = token === undefined ? undefined : { jobId, token };
    this.seenHeldAtMs = undefined;
  }

  /** Whether the next further chunk should check (see LOCK_CHECK_INTERVAL_MS). */
  get due(): boolean {
    return this.seenHeldAtMs === undefined || performance.now() - this.seenHeldAtMs >= LOCK_CHECK_INTERVAL_MS;
  }

  /** Throws when another settler holds the lock of the job in hand. */
  async check(): Promise<void> {
    const lock = this.lock;
    if (lock === undefined) return;
    const holder = await this.deps.retryRedis('lock_check', async () => (await this.deps.redis()).get(`${this.deps.jobKey(lock.jobId)}:lock`), { jobId: lock.jobId });
    if (holder !== lock.token) throw new Error(`shard ${this.deps.shard}: the lock of job ${lock.jobId} is held by another settler; stopping mid-job`);
    // Unless the job ended meanwhile (a failed write does not wait for this check).
    if (this.lock === lock) this.seenHeldAtMs = performance.now();
  }
}
