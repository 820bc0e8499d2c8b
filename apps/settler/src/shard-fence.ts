/**
 * This settler's fencing epoch for one shard and the timestamps it issues under it
 * (libs/domain/src/fencing.ts has the rule and why it orders writers whatever their clocks).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { nextEpoch, nextWriteTimestamp } from '@settlement/domain';
import type { FenceRepository } from '@settlement/scylla';

/** Raises the Redis copy of the epoch to ARGV[1] unless it is already at or above it. */
const RAISE_EPOCH_LUA = `local v = redis.call('GET', KEYS[1]) if v == false or tonumber(v) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1`;

export class ShardFence {
  private epoch: bigint | undefined;
  /** The highest epoch this process ever held or saw for the shard: never forgotten. */
  private highestSeen: bigint | undefined;
  private lastIssuedTs: bigint | undefined;

  constructor(
    private readonly shard: string,
    /** This settler's identity, recorded with the epoch it takes. */
    private readonly owner: string,
    private readonly fences: FenceRepository,
    private readonly logger: Logger,
    /**
     * A second copy of the shard's epoch in Redis (shardEpochKey). The fence row
     * can be lost with the tail of a node's commit log (periodic sync) while the settler that
     * held that epoch lives on; another settler taking the shard then must not get the same
     * epoch. Redis and Cassandra losing the same epoch at once is what remains.
     */
    private readonly epochCopy?: { readonly redis: () => Promise<Redis>; readonly key: string },
  ) {}

  /** The epoch held now; undefined before the first write after a take-over or a drop. */
  get held(): bigint | undefined {
    return this.epoch;
  }

  /** Forgets the epoch (another settler may have taken the shard): the next write takes a new one. */
  drop(): void {
    this.epoch = undefined;
  }

  /**
   * Makes sure an epoch is held that may still write over the stored state: taken (lightweight
   * transaction on the fence row) at a take-over, again when another owner's batch is found
   * stored, or when the epoch's span is used up. Returns true when a new epoch was taken: the
   * caller's view of the shard predates it and must be read again.
   */
  async ensure(storedWriteTs: bigint, run: (take: () => Promise<bigint>) => Promise<bigint>, jobId: string): Promise<boolean> {
    if (this.epoch !== undefined && nextWriteTimestamp({ epoch: this.epoch, storedWriteTs, lastIssuedTs: this.lastIssuedTs }).ok) return false;
    const held = this.epoch;
    const copied = await this.readCopy();
    let floor = this.highestSeen;
    if (copied !== undefined && (floor === undefined || copied > floor)) floor = copied;
    this.epoch = await run(() => this.fences.take(this.shard, this.owner, (current) => nextEpoch(current, storedWriteTs, floor)));
    this.highestSeen = this.epoch;
    await this.writeCopy(this.epoch);
    this.logger.info({ shard: this.shard, jobId, epoch: this.epoch.toString(), previous: held?.toString() }, 'fencing epoch taken');
    return true;
  }

  /** The next batch's timestamp: fixed before the write, so every retry of it is the same cells. */
  issue(storedWriteTs: bigint): bigint {
    if (this.epoch === undefined) throw new Error(`shard ${this.shard}: no fencing epoch held`);
    const next = nextWriteTimestamp({ epoch: this.epoch, storedWriteTs, lastIssuedTs: this.lastIssuedTs });
    if (!next.ok) throw new Error(`shard ${this.shard}: cannot stamp a batch with epoch ${this.epoch}: ${next.reason}`);
    this.lastIssuedTs = next.writeTs;
    return next.writeTs;
  }

  private async readCopy(): Promise<bigint | undefined> {
    if (this.epochCopy === undefined) return undefined;
    try {
      const value = await (await this.epochCopy.redis()).get(this.epochCopy.key);
      return value !== null && /^\d{1,19}$/.test(value) ? BigInt(value) : undefined;
    } catch (error) {
      // Without it the fence row, the stored watermark and this process's memory still order epochs.
      this.logger.warn({ err: error, shard: this.shard }, 'could not read the Redis copy of the fencing epoch');
      return undefined;
    }
  }

  private async writeCopy(epoch: bigint): Promise<void> {
    if (this.epochCopy === undefined) return;
    try {
      await (await this.epochCopy.redis()).eval(RAISE_EPOCH_LUA, 1, this.epochCopy.key, epoch.toString());
    } catch (error) {
      this.logger.warn({ err: error, shard: this.shard, epoch: epoch.toString() }, 'could not record the fencing epoch in Redis');
    }
  }
}
