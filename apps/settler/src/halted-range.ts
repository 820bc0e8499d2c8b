/**
 * The range a shard waits for while a chain recovery finds no retained job for it, published
 * where operators and the ingestor look: the settler's status, the `settler_chain_halted`
 * metric, and the Redis hash the ingestor reads to have the engine re-send the range
 * (libs/domain halted-shards.ts). Best effort: the halt goes on, and is logged, whether Redis
 * takes it or not.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { encodeHaltedShardRange, haltedShardsKey } from '@settlement/domain';
import type { SettlerMetrics } from './metrics.js';
import type { HaltedRange } from './shard-types.js';

export class HaltedRangePublisher {
  private range: HaltedRange | undefined;

  constructor(
    private readonly shard: string,
    private readonly deps: { readonly redisPrefix: string; readonly metrics: SettlerMetrics; readonly logger: Logger; readonly redis: () => Promise<Redis> },
  ) {}

  get current(): HaltedRange | undefined {
    return this.range;
  }

  /** Forgets the range without publishing (another process may have repaired the shard since). */
  forget(): void {
    this.range = undefined;
  }

  /** Publishes the range the shard waits for (undefined: none). */
  async set(range: HaltedRange | undefined): Promise<void> {
    const was = this.range;
    this.range = range;
    this.deps.metrics.chainHalted.set({ shard: this.shard }, range === undefined ? 0 : 1);
    if (range === undefined && was === undefined) return;
    try {
      const redis = await this.deps.redis();
      const key = haltedShardsKey(this.deps.redisPrefix);
      if (range === undefined) await redis.hdel(key, this.shard);
      // Written at every halt step, not only when the range changes: the ingestor may have
      // removed an entry whose range it saw passed, and the shard halted on it again.
      else await redis.hset(key, this.shard, encodeHaltedShardRange({ ...range, haltedAtMs: Date.now() }));
    } catch (error) {
      this.deps.logger.warn({ err: error, shard: this.shard }, 'could not record the halted range in Redis');
    }
  }
}
