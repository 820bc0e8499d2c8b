/**
 * This settler's fencing epoch for one shard and the timestamps it issues under it
 * (libs/domain/src/fencing.ts has the rule and why it orders writers whatever their clocks).
 */
import type { Logger } from 'pino';
import { nextEpoch, nextWriteTimestamp } from '@settlement/domain';
import type { FenceRepository } from '@settlement/scylla';

export class ShardFence {
  private epoch: bigint | undefined;
  private lastIssuedTs: bigint | undefined;

  constructor(
    private readonly shard: string,
    /** This settler's identity, recorded with the epoch it takes. */
    private readonly owner: string,
    private readonly fences: FenceRepository,
    private readonly logger: Logger,
  ) {}

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
    this.epoch = await run(() => this.fences.take(this.shard, this.owner, (current) => nextEpoch(current, storedWriteTs, held)));
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
}
