/**
 * A mismatch counts only once it outlived a batchlog replay (issue 17, point 5). A LOGGED BATCH
 * whose coordinator died mid-write is applied later by the batchlog, after the write timeout, on
 * the batchlog's replay schedule; meanwhile a row can look wrong. The reconciler reads a user
 * with findings again only `reconciliation.confirm_delay_ms` after the page's first read, so a
 * row whose batch lands in between is not reported (nor "fixed"). Here the late batch is played
 * by the test: a row is set wrong, and put back while the run waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeTestQueues, createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { createLogger, createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { MarketCatalog } from '@settlement/domain';
import { WatermarkRepository } from '@settlement/scylla';
import type { SettlementConfig } from '@settlement/config';
// Test only: the real settler runs in-process and its deterministic stream generator feeds it.
import { startSettler } from '@settlement/settler';
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see fix-twice.int.test.ts
import { enqueue, waitForWatermarks } from '../../settler/test/harness.js';
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see fix-twice.int.test.ts
import { generateStream, toJobs } from '../../settler/test/stream-generator.js';
import { reconcileOnce } from '../src/index.js';

let ks: TestKeyspace;
let redis: Redis;
let users: bigint[];
const queues = new Map<string, Queue>();
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ reconciliation: { concurrency: 4 } }));
  const catalog = new MarketCatalog(ks.config);
  redis = createRedisConnection(ks.config.redis.url);
  for (const shard of catalog.shards) queues.set(shard, createSettlementQueue(shard, { connection: redis, prefix: ks.config.redis.prefix }));
  const settler = await startSettler({ config: ks.config, logger });
  const stream = generateStream({ catalog, messages: 400, users: 20, seed: 19 });
  users = [...stream.users];
  await enqueue(queues, toJobs(stream.messages, 50));
  await waitForWatermarks(new WatermarkRepository(ks.client, ks.config.scylladb.keyspace), stream.lastSeqByShard, 60_000);
  await settler.close();
}, 90_000);

afterAll(async () => {
  await closeTestQueues(queues.values(), redis);
  await ks?.drop();
});

const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });

/** Sets a settled row of the user off by one, stamped just above its own write (fenced timestamps); returns how to put it back. */
async function knockOff(userId: bigint): Promise<() => Promise<void>> {
  const row = (await q('SELECT asset_id, shard, available, WRITETIME(available) AS wt FROM user_balances WHERE user_id = ?', [userId])).first()!;
  const key = [userId, row['asset_id'], row['shard']];
  const written = row['wt'] as bigint;
  await q('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 1n, (row['available'] as bigint) + 1n, ...key]);
  // The late batch: the right value at a later timestamp, as a batchlog replay would land it.
  return async () => {
    await q('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 2n, row['available'], ...key]);
  };
}

function run(confirmDelayMs: number) {
  const config: SettlementConfig = { ...ks.config, reconciliation: { ...ks.config.reconciliation, confirm_delay_ms: confirmDelayMs } };
  return reconcileOnce({ config, logger, request: { mode: 'users', userIds: [users[0]!.toString()] }, jobId: `confirm-${confirmDelayMs}-${Date.now()}` });
}

describe('confirming a mismatch', () => {
  it('does not count a row whose late batch lands within reconciliation.confirm_delay_ms', async () => {
    const putBack = await knockOff(users[0]!);
    const summary = run(4_000);
    // The late batch lands while the run waits to read the user again.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await putBack();
    expect(await summary).toMatchObject({ status: 'completed', errors: 0 });
  }, 60_000);

  it('counts a mismatch that is still there after the delay', async () => {
    await knockOff(users[0]!);
    expect(await run(500)).toMatchObject({ status: 'completed', errors: 1 });
  }, 60_000);
});
