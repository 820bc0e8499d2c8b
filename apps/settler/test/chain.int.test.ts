/**
 * The job chain: a job whose predecessor was not applied makes the settler apply the missing
 * job first (from the failed, delayed or wait list, or the completed jobs Redis retains), or
 * halt the shard, naming the range, until it appears; a stop
 * during the halt hands the job back to the queue instead of failing or skipping it.
 */
import { Worker, type Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, type TestKeyspace } from '@settlement/testing';
import { FUNDING_SHARD, SETTLE_JOB_NAME, decodeHaltedShardRange, encodeSettlementJob, haltedShardsKey, settlementQueueName, type FundingMessage } from '@settlement/domain';
import { createLogger, createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { BalanceRepository, WatermarkRepository } from '@settlement/scylla';
import { startSettler, type RunningSettler } from '../src/index.js';
import { enqueue, waitFor, waitForWatermarks } from './harness.js';
import type { StreamJob } from './stream-generator.js';

let ks: TestKeyspace;
let redis: ReturnType<typeof createRedisConnection>;
let queue: Queue;
let watermarks: WatermarkRepository;
let balances: BalanceRepository;
let settler: RunningSettler | undefined;
const USER = 4242n;

beforeAll(async () => {
  ks = await createTestKeyspace();
  redis = createRedisConnection(ks.config.redis.url);
  queue = createSettlementQueue(FUNDING_SHARD, { connection: redis, prefix: ks.config.redis.prefix });
  watermarks = new WatermarkRepository(ks.client, ks.config.scylladb.keyspace);
  balances = new BalanceRepository(ks.client, ks.config.scylladb.keyspace);
});

afterAll(async () => {
  await settler?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await redis?.quit();
  await ks?.drop();
});

/** A job of `count` deposits of 1 each after `prev`, on seqs prev+1 …. */
function depositJob(prev: bigint, count: number, suffix = ''): StreamJob {
  const messages: FundingMessage[] = Array.from({ length: count }, (_, i) => {
    const seq = prev + BigInt(i) + 1n;
    return { kind: 'funding', shard: FUNDING_SHARD, seq, userId: USER, sequenceId: seq, eventType: 'DEPOSIT', amount: 1n, currency: 2, relatedId: 0n, createdAt: 1n };
  });
  return { shard: FUNDING_SHARD, prevLastSeq: prev, messages, jobId: `funding-${prev + 1n}-${prev + BigInt(count)}${suffix}` };
}

async function usdt(): Promise<bigint> {
  return (await balances.getUserBalances(USER)).find((b) => b.assetId === 2)?.available ?? 0n;
}

async function counter(name: 'chainHalts' | 'chainRecoveries'): Promise<number> {
  return (await settler!.metrics[name].get()).values.reduce((n, v) => n + v.value, 0);
}

describe('job chain of a shard', () => {
  it('applies a failed earlier job first, then the job that found it missing', async () => {
    const j1 = depositJob(0n, 10);
    const j2 = depositJob(10n, 10);
    const j3 = depositJob(20n, 10);
    // A settler that gave up on j2 (as BullMQ does after too many stalls): j2 lands in failed.
    await enqueue(new Map([[FUNDING_SHARD, queue]]), [j2]);
    const failer = new Worker(settlementQueueName(FUNDING_SHARD), async () => {
      throw new Error('stalled too often');
    }, { connection: createRedisConnection(ks.config.redis.url), prefix: ks.config.redis.prefix });
    await waitFor('j2 failed', async () => (await queue.getFailedCount()) === 1, 10_000);
    await failer.close();

    await enqueue(new Map([[FUNDING_SHARD, queue]]), [j1, j3]);
    settler = await startSettler({ config: ks.config, logger: createLogger({ app: 'settler-test', level: 'silent' }), shards: [FUNDING_SHARD] });
    await waitForWatermarks(watermarks, new Map([[FUNDING_SHARD, 30n]]), 20_000);
    expect(await usdt()).toBe(30n);
    expect(await queue.getFailedCount()).toBe(0);
    expect(await counter('chainRecoveries')).toBe(1);
    expect((await watermarks.get(FUNDING_SHARD))?.lastJobId).toBe(j3.jobId);
  }, 40_000);

  it('halts the shard while the missing job is nowhere, hands the job back on stop, and resumes when it appears', async () => {
    const j4 = depositJob(30n, 5);
    const j5 = depositJob(35n, 5);
    await enqueue(new Map([[FUNDING_SHARD, queue]]), [j5]);
    await waitFor('halt', async () => (await counter('chainHalts')) >= 2, 20_000, 50);
    expect((await watermarks.get(FUNDING_SHARD))?.lastSeq).toBe(30n);
    expect(await queue.getJobState(j5.jobId)).toBe('active');

    // Stopping during the halt neither completes nor fails j5: it waits for the next settler.
    await settler!.close();
    expect(await queue.getJobState(j5.jobId)).toBe('waiting');
    expect(await queue.getFailedCount()).toBe(0);

    settler = await startSettler({ config: ks.config, logger: createLogger({ app: 'settler-test', level: 'silent' }), shards: [FUNDING_SHARD] });
    await waitFor('halt again', async () => (await counter('chainHalts')) >= 1, 20_000, 50);
    // The missing job shows up (here: delayed far in the future); the settler applies it first.
    await queue.add(SETTLE_JOB_NAME, encodeSettlementJob(FUNDING_SHARD, j4.prevLastSeq, j4.messages), { jobId: j4.jobId, delay: 3_600_000 });
    await waitForWatermarks(watermarks, new Map([[FUNDING_SHARD, 40n]]), 30_000);
    expect(await usdt()).toBe(40n);
    await waitFor('j5 completed', async () => (await queue.getJobState(j5.jobId)) === 'completed', 10_000);
  }, 60_000);

  it('names the missing range while halted, and applies it from the wait list once it is re-sent behind the job in hand', async () => {
    // As after Redis came back without its last writes: the engine re-sends the range, and its
    // job queues up behind the one that found it missing.
    const j6 = depositJob(40n, 5);
    const j7 = depositJob(45n, 5);
    await enqueue(new Map([[FUNDING_SHARD, queue]]), [j7]);
    await waitFor('halted status', async () => settler!.status()[FUNDING_SHARD]?.halted !== undefined, 20_000, 50);
    expect(settler!.status()[FUNDING_SHARD]?.halted).toEqual({ afterSeq: '40', throughSeq: '45' });
    expect((await settler!.metrics.chainHalted.get()).values.find((v) => v.labels.shard === FUNDING_SHARD)?.value).toBe(1);
    // Recorded for the ingestor, which has the engine re-send the range.
    const recorded = await redis.hget(haltedShardsKey(ks.config.redis.prefix), FUNDING_SHARD);
    expect(decodeHaltedShardRange(recorded!)).toMatchObject({ afterSeq: 40n, throughSeq: 45n });

    await enqueue(new Map([[FUNDING_SHARD, queue]]), [j6]);
    await waitForWatermarks(watermarks, new Map([[FUNDING_SHARD, 50n]]), 30_000);
    expect(await usdt()).toBe(50n);
    expect(settler!.status()[FUNDING_SHARD]?.halted).toBeUndefined();
    expect(await redis.hget(haltedShardsKey(ks.config.redis.prefix), FUNDING_SHARD)).toBeNull();
    await waitFor('j7 completed', async () => (await queue.getJobState(j7.jobId)) === 'completed', 10_000);
    // j6, applied first from the wait list, is delivered later and skipped on the watermark.
    await waitFor('j6 completed', async () => (await queue.getJobState(j6.jobId)) === 'completed', 10_000);
    expect(await usdt()).toBe(50n);
  }, 60_000);
});
