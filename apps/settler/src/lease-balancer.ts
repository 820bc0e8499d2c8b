/**
 * Spreads the shard leases over the live settler processes. With S shards and N processes, a
 * process takes a free lease while it holds fewer than ceil(S / N), and hands one over per lease
 * period while it holds more: adding a settler process then adds settling capacity (the shards'
 * work runs on more cores) instead of a stand-by, and a process that joins late gets its share.
 *
 * Liveness never waits on the balance: a lease that stays free for two of the takers' lease
 * checks (nobody under their share took it, e.g. because the process that held it died while
 * still counted as live) is taken by whoever sees it. Correctness never depends on it at all
 * (see ShardLease).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface LeaseBalancerOptions {
  readonly redis: Redis;
  /** Sorted set of live settler processes, scored by their last check-in (epoch ms). */
  readonly membersKey: string;
  readonly memberId: string;
  readonly shardCount: number;
  /** The shard leases' time-to-live, ms: the pace of check-ins, hand-overs and take-overs. */
  readonly leaseMs: number;
  /** Leases this process holds now. */
  readonly held: () => number;
  readonly logger: Logger;
}

export class LeaseBalancer {
  private liveSettlers = 1;
  private lastHandOverAtMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LeaseBalancerOptions) {}

  /** A process that has not checked in for this long no longer counts (3 lease periods). */
  get memberTtlMs(): number {
    return 3 * this.options.leaseMs;
  }

  /** How long a free lease waits for a process under its share before anyone takes it. */
  get orphanWaitMs(): number {
    return Math.ceil((2 * this.options.leaseMs) / 3);
  }

  /** Leases this process should hold while every live process is alive. */
  get fairShare(): number {
    return Math.ceil(this.options.shardCount / this.liveSettlers);
  }

  get live(): number {
    return this.liveSettlers;
  }

  /** Checks in once (so the count includes this process), then every third of a lease period. */
  async start(): Promise<void> {
    await this.checkIn();
    this.timer = setInterval(
      () => void this.checkIn().catch((error: unknown) => this.options.logger.debug({ err: error }, 'settler check-in failed')),
      Math.max(50, Math.floor(this.options.leaseMs / 3)),
    );
    this.timer.unref();
  }

  /** Whether to take a lease that has been seen free for `freeForMs`. */
  mayAcquire(freeForMs: number): boolean {
    return this.options.held() < this.fairShare || freeForMs >= this.orphanWaitMs;
  }

  /** Whether to hand one held lease over now; at most one per lease period. */
  takeHandOver(): boolean {
    const nowMs = Date.now();
    if (this.options.held() <= this.fairShare || nowMs - this.lastHandOverAtMs < this.options.leaseMs) return false;
    this.lastHandOverAtMs = nowMs;
    return true;
  }

  /** Leaves the set at once, so the others take this process's shards without waiting. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.options.redis.zrem(this.options.membersKey, this.options.memberId);
  }

  private async checkIn(): Promise<void> {
    const { redis, membersKey, memberId } = this.options;
    const nowMs = Date.now();
    const results = await redis
      .multi()
      .zadd(membersKey, nowMs, memberId)
      .zremrangebyscore(membersKey, '-inf', nowMs - this.memberTtlMs)
      .zcard(membersKey)
      .exec();
    const count = Number(results?.[2]?.[1]);
    if (!Number.isInteger(count)) return;
    if (count !== this.liveSettlers) this.options.logger.info({ liveSettlers: count, fairShare: Math.ceil(this.options.shardCount / Math.max(1, count)) }, 'settler processes changed');
    this.liveSettlers = Math.max(1, count);
  }
}
