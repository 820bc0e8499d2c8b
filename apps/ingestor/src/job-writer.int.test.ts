/**
 * JobWriter on the real Redis: the position moves only when every job of the MULTI was added
 * (issue 18.4), and a state hash that went back is noticed before anything becomes the new
 * position (issue 16.2).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ingestPositionKey, settlementQueueName } from '@settlement/domain';
import { createSettlementQueue } from '@settlement/runtime';
import { stackEndpoints, uniqueName } from '@settlement/testing';
import type { EnqueueUnit } from './enqueue-unit.js';
import { JobWriter } from './job-writer.js';
import { PositionLostError } from './position-lost-error.js';

let redis: Redis;
let prefix: string;
let queues: Queue[];
let writer: JobWriter;
const stateKey = () => ingestPositionKey(prefix);

function job(shard: string, first: number, last: number) {
  return { queue: settlementQueueName(shard), name: 'settle', jobId: `${shard}-${first}-${last}`, data: { shard, first, last } };
}

beforeAll(async () => {
  redis = new Redis(stackEndpoints().redisUrl, { maxRetriesPerRequest: 3 });
});

afterEach(async () => {
  await Promise.all(queues.map((q) => q.close()));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
});

afterAll(() => redis.disconnect());

async function freshWriter(): Promise<void> {
  prefix = `{${uniqueName('jw')}}`;
  queues = ['btc_usdt', 'eth_usdt'].map((shard) => createSettlementQueue(shard, { connection: redis, prefix }));
  writer = new JobWriter(redis, queues, stateKey());
  await writer.ready();
}

describe('JobWriter', () => {
  it('does not move the position when one job add fails inside EXEC, and moves it once the unit is written again', async () => {
    await freshWriter();
    // eth_usdt's job counter holds a non-number: BullMQ's add script fails on INCR inside EXEC,
    // while the btc_usdt add in the same MULTI succeeds.
    await redis.set(`${prefix}:${settlementQueueName('eth_usdt')}:id`, 'not-a-number');
    const unit: EnqueueUnit = { jobs: [job('btc_usdt', 1, 3), job('eth_usdt', 2, 4)], marks: { btc_usdt: '3', eth_usdt: '4', global: '4' } };
    await expect(writer.write([unit])).rejects.toThrow(/not an integer/);
    expect(await redis.exists(`${prefix}:${settlementQueueName('eth_usdt')}:eth_usdt-2-4`)).toBe(0);
    // Nothing of the position moved: it would be ahead of a job that does not exist.
    expect(await redis.hgetall(stateKey())).toEqual({});

    await redis.del(`${prefix}:${settlementQueueName('eth_usdt')}:id`);
    await writer.write([unit]);
    expect(await redis.hgetall(stateKey())).toEqual({ btc_usdt: '3', eth_usdt: '4', global: '4' });
    expect(await queues[0]!.getJobCounts('wait')).toEqual({ wait: 1 });
    expect(await queues[1]!.getJobCounts('wait')).toEqual({ wait: 1 });
  });

  it('refuses to write a position over a state hash that went back, naming the field', async () => {
    await freshWriter();
    await writer.write([{ jobs: [job('btc_usdt', 1, 5)], marks: { btc_usdt: '5', global: '5' } }]);
    // Redis comes back without its last writes (here: without anything).
    await redis.del(stateKey());
    const next: EnqueueUnit = { jobs: [job('btc_usdt', 6, 9)], marks: { btc_usdt: '9', global: '9' } };
    const error = await writer.write([next]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PositionLostError);
    expect((error as PositionLostError).message).toMatch(/btc_usdt 5 → 0|global 5 → 0/);
    expect(await redis.hgetall(stateKey())).toEqual({});
    // A verify() names every field that went back.
    const verified = await writer.verify().catch((e: unknown) => e);
    expect((verified as PositionLostError).fields.map((f) => f.field).sort()).toEqual(['btc_usdt', 'global']);
    // Positions in Redis as large as u64 compare exactly (no double rounding in the script).
    await writer.resetState(new Map([['btc_usdt', 18446744073709551615n]]));
    await writer.write([{ jobs: [], marks: { btc_usdt: '18446744073709551615' } }]);
    await redis.hset(stateKey(), 'btc_usdt', '18446744073709551614');
    await expect(writer.write([{ jobs: [], marks: {} }])).rejects.toBeInstanceOf(PositionLostError);
  });

  it('takes its own lower write as the new floor (global steps back while a late message waits in a partial job)', async () => {
    await freshWriter();
    await writer.write([{ jobs: [job('btc_usdt', 4, 4)], marks: { btc_usdt: '4', global: '4' } }]);
    await writer.write([{ jobs: [], marks: { global: '1' } }]);
    await writer.write([{ jobs: [job('eth_usdt', 2, 2)], marks: { eth_usdt: '2', global: '4' } }]);
    expect(await redis.hgetall(stateKey())).toEqual({ btc_usdt: '4', eth_usdt: '2', global: '4' });
  });
});
