import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Extends the lease only while it is still ours. */
const RENEW_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lease only while it is still ours. */
const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** When to take a free lease and when to hand a held one over (see LeaseBalancer). */
export interface LeasePolicy {
  /** Whether to take the lease, free for `freeForMs` as far as this process has seen. */
  mayAcquire(freeForMs: number): boolean;
  /** Whether to hand this held lease over now. */
  takeHandOver(): boolean;
}

export interface ShardLeaseOptions {
  readonly redis: Redis;
  readonly key: string;
  /** Lease time-to-live, ms; renewed every third of it. */
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly shard: string;
  /** Called when this process becomes the shard's settler. */
  readonly onAcquired: () => void;
  /** Called when this process stops being the shard's settler (missed renewals, or handed over). */
  readonly onLost: () => void;
  /** Without one, a free lease is taken at once and a held one kept. */
  readonly policy?: LeasePolicy;
}

/**
 * Shard affinity between settler processes. BullMQ's queue-wide concurrency of 1 already makes
 * one job per shard active at a time; which process takes it is otherwise chance, and every
 * hand-over costs the new process a reload of the shard's balance rows. The lease makes one
 * process the shard's settler while it lives; with a policy (LeaseBalancer) the live processes
 * share the shards' leases out, and take over a lease that expires. Correctness never depends
 * on it: a process that lost its lease and still finishes a job is fenced by the job lock, the
 * watermark and the row versions.
 */
export class ShardLease {
  private readonly token = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private stopped = false;
  private checking = false;
  /** Since when this process has seen the lease free, epoch ms. */
  private freeSinceMs: number | undefined;

  constructor(private readonly options: ShardLeaseOptions) {}

  get isHeld(): boolean {
    return this.held;
  }

  start(): void {
    // One check at a time: while Redis is away its commands wait, and checks piling up behind
    // them would all find the lease gone at once when it is back (one "lost" each).
    const tick = () => {
      if (this.checking) return;
      this.checking = true;
      void this.tick()
        .catch((error: unknown) => this.options.logger.debug({ err: error, shard: this.options.shard }, 'lease check failed'))
        .finally(() => (this.checking = false));
    };
    tick();
    this.timer = setInterval(tick, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { redis, key, leaseMs, policy } = this.options;
    if (this.held) {
      if (policy?.takeHandOver()) {
        // Stop first: if the release fails, the lease simply expires.
        this.held = false;
        this.options.onLost();
        this.options.logger.info({ shard: this.options.shard }, 'shard lease handed over to even out the settlers');
        await redis.eval(RELEASE_SCRIPT, 1, key, this.token);
        return;
      }
      const renewed = Number(await redis.eval(RENEW_SCRIPT, 1, key, this.token, String(leaseMs)));
      if (renewed === 1 || this.stopped) return;
      this.held = false;
      this.options.logger.warn({ shard: this.options.shard }, 'shard lease lost to another settler');
      this.options.onLost();
      return;
    }
    if (policy !== undefined) {
      const nowMs = Date.now();
      if ((await redis.exists(key)) === 1) {
        this.freeSinceMs = undefined;
        return;
      }
      this.freeSinceMs ??= nowMs;
      if (!policy.mayAcquire(nowMs - this.freeSinceMs)) return;
    }
    const acquired = await redis.set(key, this.token, 'PX', leaseMs, 'NX');
    if (acquired === 'OK' && !this.stopped) {
      this.held = true;
      this.freeSinceMs = undefined;
      this.options.logger.info({ shard: this.options.shard }, 'shard lease acquired');
      this.options.onAcquired();
    }
  }

  /** Stops renewing and hands the shard over at once (on shutdown). */
  async release(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.held) await this.options.redis.eval(RELEASE_SCRIPT, 1, this.options.key, this.token);
    this.held = false;
  }
}
