/**
 * Shard leases spread over the live settler processes: a second process takes half the shards
 * (it settles instead of standing by), both together settle a stream exactly, when one stops the
 * other takes its shards back, and a process that died but still counts as live is not handed
 * shards it would leave idle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settlerMembersKey } from '@settlement/domain';
import { createLogger } from '@settlement/runtime';
import { startSettler, type RunningSettler } from '../src/index.js';
import { enqueue, expectBalances, expectConservation, openTestBed, waitFor, waitForWatermarks, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

/** Short leases, so the hand-overs of this test take about a second. */
const LEASE_MS = 600;

let bed: TestBed;
let first: RunningSettler | undefined;
let second: RunningSettler | undefined;

beforeAll(async () => {
  bed = await openTestBed({ settler: { shard_lease_ms: LEASE_MS } });
});

afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
  await bed?.close();
});

const start = (): Promise<RunningSettler> => startSettler({ config: bed.ks.config, logger: createLogger({ app: 'settler-test', level: 'silent' }), heartbeatIntervalMs: 200 });

/** Shards whose lease the settler holds, as its heartbeat status says. */
function held(settler: RunningSettler | undefined): string[] {
  return Object.entries(settler?.status() ?? {})
    .filter(([, status]) => status.leaseHeld)
    .map(([shard]) => shard);
}

async function batchesWritten(settler: RunningSettler): Promise<number> {
  return (await settler.metrics.batches.get()).values.reduce((n, v) => n + v.value, 0);
}

describe('shard leases over several settler processes', () => {
  it('gives a second process half the shards, and the two settle a stream exactly', async () => {
    const shardCount = bed.catalog.shards.length;
    expect(shardCount).toBe(4);
    first = await start();
    await waitFor('the only settler to hold every lease', async () => held(first).length === shardCount, 10_000);

    second = await start();
    await waitFor('two leases each', async () => held(first).length === 2 && held(second).length === 2, 15_000);
    expect(new Set([...held(first), ...held(second)]).size).toBe(shardCount);

    const stream = generateStream({ catalog: bed.catalog, messages: 4_000, users: 150, seed: 11 });
    await enqueue(bed.queues, toJobs(stream.messages, 50));
    await waitForWatermarks(bed.watermarks, stream.lastSeqByShard, 60_000);
    // Each process settled its own shards.
    expect(await batchesWritten(first)).toBeGreaterThan(0);
    expect(await batchesWritten(second)).toBeGreaterThan(0);
    const expected = expectedBalances(stream.messages, bed.catalog.feeAccountUserId);
    expect(await expectBalances(bed.balances, expected, [...stream.users, bed.catalog.feeAccountUserId])).toBeGreaterThan(stream.users.length);
    await expectConservation(bed.balances, expected.supply);
  });

  it('hands the shards of a process that stops to the one left', async () => {
    await second!.close();
    second = undefined;
    await waitFor('the remaining settler to hold every lease', async () => held(first).length === bed.catalog.shards.length, 10_000);
  });

  it('keeps every shard while a dead process still counts as live (it asks for none)', async () => {
    // A process that died without leaving: still in the set, holding nothing, asking nothing.
    const membersKey = settlerMembersKey(bed.ks.config.redis.prefix);
    const lowest: number[] = [];
    const counted: number[] = [];
    const deadline = Date.now() + 5 * LEASE_MS;
    while (Date.now() < deadline) {
      await bed.redis.zadd(membersKey, Date.now(), 'dead-settler');
      lowest.push(held(first).length);
      counted.push(first!.leaseShare()!.liveSettlers);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // It counted the dead process (a fair share of 2 of the 4 shards)…
    expect(Math.max(...counted)).toBe(2);
    // …and handed nothing over: with no taker, a hand-over would only idle a shard.
    expect(Math.min(...lowest)).toBe(bed.catalog.shards.length);
    await bed.redis.zrem(membersKey, 'dead-settler');
  });
});
