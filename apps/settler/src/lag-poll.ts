/**
 * The settler's periodic look at its shards: lag (the ingestor's last enqueued sequence minus
 * the stored watermark) for the status and the metrics, and a verify request for any shard whose
 * stored watermark is below a batch this process saw acknowledged — a node came back without
 * its last batches (a periodic commit log), perhaps while no request of ours failed.
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
    },
  ) {}

  lagOf(shard: string): number | null {
    return this.lag.get(shard) ?? null;
  }

  async poll(): Promise<void> {
    const { redis, shards, settlers, metrics } = this.deps;
    const [enqueued, stored] = await Promise.all([redis.hmget(ingestPositionKey(this.deps.redisPrefix), ...shards), this.deps.watermarks.list()]);
    const storedBySeq = new Map(stored.map((w) => [w.shard, w.lastSeq]));
    shards.forEach((shard, i) => {
      const settler = settlers.get(shard)!;
      // A halted shard is already in a chain repair, which reads the watermark itself.
      if ((storedBySeq.get(shard) ?? 0n) < settler.acknowledged && settler.halted === undefined) this.deps.verify.request(shard, 'stored watermark below an acknowledged batch');
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
