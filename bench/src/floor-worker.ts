/**
 * The transport floor's consumer (transport-floor.ts): one BullMQ Worker per settlement queue,
 * configured as the settler's (concurrency 1, its lock and stall settings), that decodes each
 * job as the settler does and completes it without settling anything — at once, or after holding
 * it as long as the service's settler took per job of that shard (FLOOR_HOLD_MS, JSON shard → ms),
 * so that the ingestor cuts jobs of the service's size. What the service spends on top of this
 * is the settling itself.
 *
 * Usage: tsx bench/src/floor-worker.ts (config from SETTLEMENT_CONFIG). Sets
 * `<prefix>:floor-worker:ready` once every worker runs; SIGTERM closes them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '@settlement/config';
import { MarketCatalog, decodeSettleJobLenient, settlementQueueName } from '@settlement/domain';
import { announceJobsDone } from '@settlement/runtime';

const config = loadConfig();
const holdMs = JSON.parse(process.env['FLOOR_HOLD_MS'] ?? '{}') as Record<string, number>;
const connection = new Redis(config.redis.url, { maxRetriesPerRequest: null });
const shards = new MarketCatalog(config).shards;
const workers = shards.map(
  (shard) =>
    new Worker(
      settlementQueueName(shard),
      async (job) => {
        const decoded = decodeSettleJobLenient(job.data, shard);
        if (!decoded.ok) throw new Error(`job ${job.id}: ${decoded.reason}`);
        const hold = holdMs[shard] ?? 0;
        if (hold > 0) await sleep(hold);
        return decoded.messages.length;
      },
      {
        connection,
        prefix: config.redis.prefix,
        concurrency: 1,
        lockDuration: config.settler.lock_duration_ms,
        maxStalledCount: config.settler.max_stalled_count,
        stalledInterval: config.settler.stalled_interval_ms,
      },
    ),
);
// As the settler does (shard-worker.ts): the ingestor cuts a held job when told the shard is free.
shards.forEach((shard, i) => announceJobsDone(workers[i]!, connection, config.redis.prefix, shard));
await Promise.all(workers.map((w) => w.waitUntilReady()));
await connection.set(`${config.redis.prefix}:floor-worker:ready`, String(process.pid));

process.once('SIGTERM', () => {
  void Promise.all(workers.map((w) => w.close())).finally(() => {
    connection.disconnect();
    process.exit(0);
  });
});
