/**
 * Spreads the shard leases over the live settler processes. With S shards and N processes, a
 * process takes a free lease while it holds fewer than ceil(S / N), and hands one over per lease
 * period while it holds more: adding a settler process then adds settling capacity (the shards'
 * work runs on more cores) instead of a stand-by, and a process that joins late gets its share.
 * A lease is handed over only while some process says it wants one (it holds fewer than its
 * share and keeps saying so at each check-in): a process that died is still counted as live
 * for a while, and handing it leases would only leave shards idle until they are taken back.
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
  /** Sorted set of the processes under their share, scored by their last check-in (epoch ms). */
  readonly wantingKey: string;
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
  /** Other processes that want a lease, as of the last check-in. */
  private wanting = 0;
  private lastHandOverAtMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LeaseBalancerOptions) {}

  /** A process that has not checked in for this long no longer counts (3 lease periods). */
  get memberTtlMs(): number {
    return 3 * this.options.leaseMs;
  }

  private get checkInIntervalMs(): number {
    return Math.max(50, Math.floor(this.options.leaseMs / 3));
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
      this.checkInIntervalMs,
    );
    this.timer.unref();
  }

  /** Whether to take a lease that has been seen free for `freeForMs`. */
  mayAcquire(freeForMs: number): boolean {
    return this.options.held() < this.fairShare || freeForMs >= this.orphanWaitMs;
  }

  /** Whether to hand one held lease over now: over its share, asked for, at most one per lease period. */
  takeHandOver(): boolean {
    const nowMs = Date.now();
    if (this.options.held() <= this.fairShare || this.wanting === 0 || nowMs - this.lastHandOverAtMs < this.options.leaseMs) return false;
    this.lastHandOverAtMs = nowMs;
    return true;
  }

  /** Leaves the set at once, so the others take this process's shards without waiting. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.options.redis.multi().zrem(this.options.membersKey, this.options.memberId).zrem(this.options.wantingKey, this.options.memberId).exec();
  }

  private async checkIn(): Promise<void> {
    const { redis, membersKey, wantingKey, memberId } = this.options;
    const nowMs = Date.now();
    // A want is fresh for two check-ins: one missed check-in does not end it, a death does.
    const wantFreshFromMs = nowMs - 2 * this.checkInIntervalMs;
    const multi = redis.multi().zadd(membersKey, nowMs, memberId).zremrangebyscore(membersKey, '-inf', nowMs - this.memberTtlMs).zcard(membersKey);
    if (this.options.held() < this.fairShare) multi.zadd(wantingKey, nowMs, memberId);
    else multi.zrem(wantingKey, memberId);
    const results = await multi.zremrangebyscore(wantingKey, '-inf', wantFreshFromMs - 1).zrange(wantingKey, 0, -1).exec();
    const count = Number(results?.[2]?.[1]);
    const wanting = results?.[5]?.[1];
    if (!Number.isInteger(count) || !Array.isArray(wanting)) return;
    const changed = Math.max(1, count) !== this.liveSettlers;
    this.liveSettlers = Math.max(1, count);
    if (changed) this.options.logger.info({ liveSettlers: this.liveSettlers, fairShare: this.fairShare }, 'settler processes changed');
    this.wanting = wanting.filter((id) => id !== memberId).length;
  }
}
