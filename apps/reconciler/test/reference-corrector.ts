/**
 * The correction contract the reconciler relies on, as executable reference (used where no real
 * settler runs, to pin the contract; the real settler is exercised in settled-stream.int.test):
 * the delta is applied to the row as stored in Cassandra, only while it holds the version and
 * values the delta was measured on, and a row recreated from nothing gets the shard watermark
 * as version, so history up to its version explains it.
 */
import { Worker, type ConnectionOptions } from 'bullmq';
import type cassandra from 'cassandra-driver';
import { CORRECT_JOB_NAME, decodeCorrectionJob, settlementQueueName } from '@settlement/domain';

export function startReferenceCorrector(options: { client: cassandra.Client; connection: ConnectionOptions; prefix: string; shards: readonly string[] }): { close(): Promise<void> } {
  const { client } = options;
  const workers = options.shards.map(
    (shard) =>
      new Worker(
        settlementQueueName(shard),
        async (job) => {
          if (job.name !== CORRECT_JOB_NAME) throw new Error(`unexpected job ${job.name}`);
          const correction = decodeCorrectionJob(job.data);
          const mark = (await client.execute('SELECT last_seq FROM shard_watermarks WHERE shard = ?', [shard], { prepare: true })).first();
          for (const row of correction.rows) {
            const stored = (
              await client.execute('SELECT available, locked, version FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [row.userId, row.assetId, shard], { prepare: true })
            ).first();
            const measured =
              (row.version === undefined || ((stored?.['version'] as bigint | undefined) ?? 0n) === row.version) &&
              (row.availableBefore === undefined || ((stored?.['available'] as bigint | undefined) ?? 0n) === row.availableBefore) &&
              (row.lockedBefore === undefined || ((stored?.['locked'] as bigint | undefined) ?? 0n) === row.lockedBefore);
            if (!measured) continue;
            await client.execute(
              'INSERT INTO user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?)',
              [
                row.userId, row.assetId, shard,
                ((stored?.['available'] as bigint | undefined) ?? 0n) + row.availableDelta,
                ((stored?.['locked'] as bigint | undefined) ?? 0n) + row.lockedDelta,
                (stored?.['version'] as bigint | undefined) ?? ((mark?.['last_seq'] as bigint | undefined) ?? 0n),
              ],
              { prepare: true },
            );
          }
        },
        { connection: options.connection, prefix: options.prefix, concurrency: 1 },
      ),
  );
  return { close: async () => void (await Promise.all(workers.map((w) => w.close()))) };
}
