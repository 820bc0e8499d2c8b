/**
 * Every error of a written balance found within the hour, not only in a sample (issue 22.4).
 * The settlers record the users of each acknowledged batch per hour; the scheduled 'changed'
 * run checks exactly those users. Here a stream is settled by the real settler, one of its users
 * is corrupted, and a 'changed' run finds it — as it finds any of them, whatever a sample of one
 * would have drawn — while a user the settler never wrote is not read at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { TestKeyspace } from '@settlement/testing';
import { ChangedUsers, createLogger, hourOf } from '@settlement/runtime';
import { reconcileOnce } from '../src/index.js';
import { openSettledBed, type SettledBed } from './settled-bed.js';

let bed: SettledBed | undefined;
let ks: TestKeyspace;
let redis: Redis;
let users: bigint[];
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  bed = await openSettledBed({ reconciliation: { concurrency: 8, sample_size: 1 }, messages: 1_500, users: 120, seed: 23 }, logger);
  ({ ks, redis } = bed);
  users = [...bed.stream.users];
}, 120_000);

afterAll(async () => {
  await bed?.close();
});

const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });

describe('the scheduled reconciliation of changed users', () => {
  it('has every user the settler wrote recorded for this hour', async () => {
    const recorded = await new ChangedUsers({ redis, prefix: ks.config.redis.prefix }).between(hourOf(Date.now()) - 1, hourOf(Date.now()), 1_000_000);
    expect(recorded).not.toBe('overflow');
    const written = (await q('SELECT DISTINCT user_id FROM user_balances', [])).rows.map((r) => r['user_id'] as bigint);
    expect(new Set(recorded as bigint[])).toEqual(new Set(written));
    for (const user of users) expect(written).toContain(user);
  });

  it('finds a corrupted balance of any changed user, checking exactly the changed users', async () => {
    const victim = users[users.length - 1]!;
    const row = (await q('SELECT asset_id, shard, available, WRITETIME(available) AS wt FROM user_balances WHERE user_id = ?', [victim])).first()!;
    // Stamped just above the row's own write: plain writes lose to the settler's fenced timestamps.
    await q('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [
      (row['wt'] as bigint) + 1n, (row['available'] as bigint) + 7n, victim, row['asset_id'], row['shard'],
    ]);
    // A user with history but never written by a settler in these hours is not the hourly run's.
    const summary = await reconcileOnce({ config: ks.config, logger, request: { mode: 'changed' }, jobId: `changed-${Date.now()}` });
    const written = (await q('SELECT DISTINCT user_id FROM user_balances', [])).rows.length;
    expect(summary).toMatchObject({ status: 'completed', errors: 1, usersChecked: written });
  });

  it('runs a full sweep instead when more users changed than reconciliation.changed_users_max', async () => {
    const config = { ...ks.config, reconciliation: { ...ks.config.reconciliation, changed_users_max: 5 } };
    const summary = await reconcileOnce({ config, logger, request: { mode: 'changed' }, jobId: `changed-overflow-${Date.now()}` });
    expect(summary).toMatchObject({ status: 'completed', mode: 'full' });
    expect(summary.errors).toBeGreaterThanOrEqual(1);
  });
});
