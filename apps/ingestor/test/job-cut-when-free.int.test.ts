/**
 * When a shard's next job is cut, on real ZMQ, Redis and a real ingestor process: while the
 * shard's settler is writing a job (the job is active, nothing waits behind it), the ingestor
 * holds the next partial job instead of cutting it after batch.max_wait_ms — a job cut then
 * could only queue behind the active one — and cuts it, with everything that arrived meanwhile,
 * once that job is done: told by the settler's notice (libs/runtime jobs-done.ts), or at its next
 * poll of the queue when no notice comes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Push } from 'zeromq';
import type { SettlementConfig } from '@settlement/config';
import { settlementQueueName } from '@settlement/domain';
import { announceJobsDone } from '@settlement/runtime';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { checkShardChain, deletePrefix, freePort, readShardJobs, redisClient, startIngestorProcess, stateKeyOf, waitFor, type IngestorProcess } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;
let ingestor: IngestorProcess | undefined;
const prefixes: string[] = [];

function trade(seq: number): string {
  return (
    `{"trade_id":${seq},"buy_order_id":1,"sell_order_id":2,"buyer_user_id":10,"seller_user_id":11,"price":100000000,"quantity":5,` +
    `"base_asset":1,"quote_asset":2,"buyer_refund":0,"seller_refund":0,"match_seq":${seq},"output_sequence":${seq},"settled_at":1,` +
    `"buyer_quote_version":1,"buyer_base_version":1,"seller_base_version":1,"seller_quote_version":1}`
  );
}

beforeAll(async () => {
  ks = await createTestKeyspace(
    testConfig({
      zmq: { settlement_port: await freePort() },
      // A partial job is due 100 ms after its first message unless held; held, it waits up to 10 s.
      batch: { max_wait_ms: 100 },
      ingestor: { backlog_wait_ms: 10_000, backlog_poll_interval_ms: 3, backlog_idle_poll_interval_ms: 10 },
    }),
  );
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  ingestor?.kill('SIGKILL');
  for (const prefix of [ks.config.redis.prefix, ...prefixes]) await deletePrefix(redis, prefix);
  redis.disconnect();
  await ks?.drop();
});

/**
 * A settler stand-in takes btc_usdt's first job and keeps it until released, while 2, 3 and 4
 * arrive; then it is released. Resolves once 2-4 are enqueued, within `releasedWithinMs`.
 */
async function holdAndRelease(config: Readonly<SettlementConfig>, name: string, announce: boolean, releasedWithinMs: number): Promise<void> {
  const push = new Push({ linger: 5_000 });
  push.connect(`tcp://127.0.0.1:${config.zmq.settlement_port}`);
  ingestor = startIngestorProcess(config, name);
  await ingestor.ready();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const taken: string[] = [];
  const workerRedis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const worker = new Worker(
    settlementQueueName('btc_usdt'),
    async (job) => {
      taken.push(job.id!);
      if (taken.length === 1) await released;
    },
    { connection: workerRedis, prefix: config.redis.prefix, concurrency: 1 },
  );
  if (announce) announceJobsDone(worker, workerRedis, config.redis.prefix, 'btc_usdt');
  try {
    await push.send(trade(1));
    await waitFor('job 1 taken by the worker', () => taken.length === 1, 10_000);

    // Job 1 is active and nothing waits behind it: 2, 3 and 4 arrive over ~400 ms, each
    // partial job's 100 ms wait passes, and none is cut.
    for (const seq of [2, 3, 4]) {
      await push.send(trade(seq));
      await new Promise((resolve) => setTimeout(resolve, 130));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await redis.hget(stateKeyOf(config), 'btc_usdt')).toBe('1');
    expect((await readShardJobs(config, 'btc_usdt', redis)).jobs.map((j) => j.id)).toEqual(['btc_usdt-1-1']);

    // Done with job 1: the next job is cut, with all three.
    release();
    await waitFor('2-4 enqueued', async () => (await redis.hget(stateKeyOf(config), 'btc_usdt')) === '4', releasedWithinMs);
    const jobs = await readShardJobs(config, 'btc_usdt', redis);
    expect(jobs.jobs.map((j) => j.id)).toEqual(['btc_usdt-1-1', 'btc_usdt-2-4']);
    expect(checkShardChain(jobs).map((m) => m.seq)).toEqual([1n, 2n, 3n, 4n]);
  } finally {
    release();
    await worker.close();
    workerRedis.disconnect();
    push.close();
  }
  expect((await ingestor.stop()).code).toBe(0);
}

describe('the next job of a shard whose settler is busy', () => {
  it('is held while the previous job is being settled, and cut with everything that came meanwhile once it is done', { timeout: 60_000 }, async () => {
    await holdAndRelease(ks.config, 'ingestor-cut', false, 5_000);
  });

  it('is cut on the settler\'s notice that the job is done, not at the next poll of the queue', { timeout: 60_000 }, async () => {
    // The poll while busy comes only every 10 s; the busy state itself is seen by the idle poll.
    const config: Readonly<SettlementConfig> = {
      ...ks.config,
      redis: { ...ks.config.redis, prefix: `${ks.config.redis.prefix.slice(0, -1)}-notice}` },
      zmq: { ...ks.config.zmq, settlement_port: await freePort() },
      ingestor: { ...ks.config.ingestor, backlog_poll_interval_ms: 10_000 },
    };
    prefixes.push(config.redis.prefix);
    await holdAndRelease(config, 'ingestor-notice', true, 5_000);
  });
});
