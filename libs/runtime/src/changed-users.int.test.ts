/**
 * The changed-users sets against a real Redis: every batch's users land in the hour's set, and
 * the set keeps an expiry although only the first record of an hour (and one a minute) sets it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { changedUsersKey } from '@settlement/domain';
import { testConfig } from '@settlement/testing';
import { ChangedUsers, HOUR_MS } from './changed-users.js';
import { createRedisConnection } from './redis.js';

const redis = createRedisConnection(testConfig().redis.url);
const prefix = `{changed-${randomUUID().slice(0, 8)}}`;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('ChangedUsers', () => {
  it('records every batch\'s users in the hour\'s set, which keeps an expiry even when Redis lost it', async () => {
    const users = new ChangedUsers({ redis, prefix, retainHours: 2 });
    const t0 = 500 * HOUR_MS + 1_000;
    const key = changedUsersKey(prefix, 500);
    await users.record([1n, 2n], t0);
    expect(await redis.ttl(key)).toBeGreaterThan(7_000);
    // The set recreated without its expiry (Redis came back empty): later batches of the same minute add users only.
    await redis.persist(key);
    await users.record([3n], t0 + 1_000);
    expect(await redis.ttl(key)).toBe(-1);
    // A minute on, the expiry is set again; a new hour gets its own.
    await users.record([4n], t0 + 61_000);
    expect(await redis.ttl(key)).toBeGreaterThan(7_000);
    await users.record([5n], t0 + HOUR_MS);
    expect(await redis.ttl(changedUsersKey(prefix, 501))).toBeGreaterThan(7_000);
    expect(await users.between(500, 501, 100)).toEqual([1n, 2n, 3n, 4n, 5n]);
  });
});
