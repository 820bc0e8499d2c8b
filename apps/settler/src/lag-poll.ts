/**
 * The settler's periodic look at its shards: lag (the ingestor's last enqueued sequence minus
 * the stored watermark) for the status and the metrics, and a verify request for any shard whose
 * stored watermark is below a batch this process saw acknowledged, or, for a shard it holds,
 * below the newest completed jobs — a node came back without its last batches (a periodic commit
 * log), perhaps while no request of ours failed. The second catches an idle shard taken over
 * from a settler that saw those batches acknowledged, when the check at the take-over could not
 * read Cassandra and no node event followed in this process (chaos run, 4 Dec, seed 1204: two
 * shards stayed rolled back for two minutes, every job of theirs long completed).
 */
import type { Redis } from 'ioredis';
import { ingestPositionKey } from '@settlement/domain';
import type { WatermarkRepository } from '@settlement/scylla';
import type { SettlerMetrics } from './metrics.js';
import type { ShardSettler } from './shard-settler.js';
import type { VerifyRequests } from './verify-requests.js';

export class LagPoll {
  /** Per shard: messages enqueued and not yet settled; null when unknown. */
  private readonly lag = new Map<string, number | null>();

  constructor(
    private readonly deps: {
      readonly redis: Redis;
      readonly redisPrefix: string;
      readonly shards: readonly string[];
      readonly settlers: ReadonlyMap<string, ShardSettler>;
      readonly watermarks: WatermarkRepository;
      readonly metrics: SettlerMetrics;
      readonly verify: VerifyRequests;
      /** Whether this process settles the shard now (holds its lease, or runs without leases). */
      readonly holds: (shard: string) => boolean;
    },
  ) {}

  lagOf(shard: string): number | null {
    return this.lag.get(shard) ?? null;
  }

  async poll(): Promise<void> {
    const { redis, shards, settlers, metrics } = this.deps;
    const newestCompleted = (shard: string): Promise<bigint | undefined> =>
      this.deps.holds(shard) ? settlers.get(shard)!.newestCompletedSeq().catch(() => undefined) : Promise.resolve(undefined);
    const [enqueued, stored, completed] = await Promise.all([
      redis.hmget(ingestPositionKey(this.deps.redisPrefix), ...shards),
      this.deps.watermarks.list(),
      Promise.all(shards.map(newestCompleted)),
    ]);
    const storedBySeq = new Map(stored.map((w) => [w.shard, w.lastSeq]));
    shards.forEach((shard, i) => {
      const settler = settlers.get(shard)!;
      const storedSeq = storedBySeq.get(shard) ?? 0n;
      const completedSeq = completed[i];
      // A halted shard is already in a chain repair, which reads the watermark itself.
      if (settler.halted === undefined) {
        if (storedSeq < settler.acknowledged) this.deps.verify.request(shard, 'stored watermark below an acknowledged batch');
        else if (completedSeq !== undefined && storedSeq < completedSeq) this.deps.verify.request(shard, 'stored watermark below the completed jobs');
      }
      const settled = storedBySeq.get(shard) ?? settler.lastSeq ?? 0n;
      metrics.lastSeq.set({ shard }, Number(settled));
      const last = enqueued[i];
      if (last === null || last === undefined || !/^\d+$/.test(last)) {
        this.lag.set(shard, null);
        return;
      }
      const behind = BigInt(last) - settled;
      this.lag.set(shard, Number(behind > 0n ? behind : 0n));
      metrics.lag.set({ shard }, Number(behind > 0n ? behind : 0n));
    });
  }
}
