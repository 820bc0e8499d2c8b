/**
 * A settler goes on settling after Redis comes back empty (kill -9 of a Redis without
 * persistence, as the machine's and compose's Redis run), again and again.
 *
 * Seen in a chaos run (4 Dec, seed 43): the settler found its shard lease gone as Redis came
 * back, paused the shard's BullMQ worker while the worker's blocking connection was still
 * reconnecting, and the pause, which disconnects that connection, left it closed for good: the
 * lease was taken again a few seconds later, but the worker took no job for the rest of the run
 * (six minutes, two shards), and at shutdown it was "still busy".
 *
 * Runs a real settler (child of this process) against a private redis-server it kills with
 * SIGKILL and starts again, empty, between rounds of jobs.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { createLogger, createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { ROOT, TcpProxy, TestRedisServer, freePort } from '@settlement/testing';
import { Closing } from '../src/closing.js';
import { startSettler, type RunningSettler } from '../src/index.js';
import type { ShardSettler } from '../src/shard-settler.js';
import { closeShardWorker, startShardWorker } from '../src/shard-worker.js';
import { enqueue, expectBalances, openTestBed, usersOf, waitFor, waitForWatermarks, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

const SHARD = 'btc_usdt';
let redisServer: TestRedisServer;
let bed: TestBed;
let settler: RunningSettler | undefined;

beforeAll(async () => {
  redisServer = new TestRedisServer(await freePort(), { dir: path.join(ROOT, 'data', 'test', `redis-restart-${process.pid}`) });
  redisServer.start();
  bed = await openTestBed({ settler: { shard_lease_ms: 900 } }, { redisUrl: redisServer.url });
  await waitFor('private Redis', async () => (await bed.redis.ping().catch(() => '')) === 'PONG', 10_000);
});

afterAll(async () => {
  await settler?.close();
  await bed?.close().catch(() => undefined);
  await redisServer?.stop();
});

describe('a settler across Redis restarts', () => {
  it('settles the jobs added after each time Redis came back empty', { timeout: 180_000 }, async () => {
    const stream = generateStream({ catalog: bed.catalog, messages: 8_000, users: 30, seed: 41 });
    const messages = stream.messages.filter((m) => m.shard === SHARD);
    const jobs = toJobs(messages, 10);
    const rounds = 3;
    const perRound = 4;
    expect(jobs.length).toBeGreaterThan(rounds * perRound * 2);
    settler = await startSettler({ config: bed.ks.config, logger: createLogger({ app: 'settler-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' }), heartbeatIntervalMs: 200 });
    const lastSeqOf = (index: number): bigint => jobs[index]!.messages.at(-1)!.seq;

    let next = 0;
    await enqueue(bed.queues, jobs.slice(0, perRound));
    next = perRound;
    await waitForWatermarks(bed.watermarks, new Map([[SHARD, lastSeqOf(next - 1)]]), 30_000);
    for (let round = 0; round < rounds; round++) {
      // The job after next comes first: the settler holds it, halted on the hole before it (as
      // when Redis lost a job), when Redis dies.
      const [missing, held] = [jobs[next]!, jobs[next + 1]!];
      await enqueue(bed.queues, [held]);
      await sleep(500);
      await redisServer.stop();
      // Down long enough for the connections' reconnect delays to grow apart (up to 2 s each):
      // the lease renewal finds the lease gone while the worker's connection still reconnects.
      await sleep(2_500);
      redisServer.start();
      await waitFor('Redis back', async () => (await bed.redis.ping().catch(() => '')) === 'PONG', 10_000);
      // The engine re-sends the hole (as the Redriver adds it), then the jobs after.
      await enqueue(bed.queues, [missing]);
      await waitForWatermarks(bed.watermarks, new Map([[SHARD, lastSeqOf(next + 1)]]), 30_000);
      await sleep(2_000);
      const after = jobs.slice(next + 2, next + 2 + perRound);
      await enqueue(bed.queues, after);
      next += 2 + perRound;
      // Only a worker that took jobs again settles these.
      await waitForWatermarks(bed.watermarks, new Map([[SHARD, lastSeqOf(next - 1)]]), 30_000);
    }
    const applied = jobs.slice(0, next).flatMap((j) => j.messages);
    await expectBalances(bed.balances, expectedBalances(applied, bed.catalog.feeAccountUserId), usersOf(applied, bed.catalog.feeAccountUserId));
  });

  // The mechanism behind seed 43 (4 Dec): ioredis's disconnect() of a client that is
  // reconnecting never ends it (no 'end', status stays "reconnecting", its retry timer gone),
  // and BullMQ's pause() that waits for the job in hand first disconnects the worker's blocking
  // connection and waits for that end. A shard worker whose lease went while its connection was
  // reconnecting was dead for good: the lease came back, it took no job. Made deterministic
  // here: the worker reaches Redis through a proxy that goes away; the lease, on a direct
  // connection, is handed over meanwhile.
  it('takes jobs again after its lease went while its connection to Redis was reconnecting', { timeout: 60_000 }, async () => {
    const proxyPort = await freePort();
    const proxy = new TcpProxy();
    await proxy.open(proxyPort, { host: '127.0.0.1', port: redisServer.port });
    const config = { ...bed.ks.config, redis: { ...bed.ks.config.redis, prefix: '{handover}' } };
    const workerRedis = createRedisConnection(`redis://127.0.0.1:${proxyPort}`);
    const leaseRedis = createRedisConnection(config.redis.url);
    const queue = createSettlementQueue('btc_eth', { connection: leaseRedis, prefix: config.redis.prefix });
    const processed: string[] = [];
    let handOver = false;
    const logger = createLogger({ app: 'settler-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const { worker, lease } = startShardWorker({
      shard: 'btc_eth',
      settler: { takeOver: () => undefined } as unknown as ShardSettler,
      processor: async (job: Job) => void processed.push(job.id ?? ''),
      redis: workerRedis,
      leaseRedis,
      config,
      logger,
      balancer: { mayAcquire: () => !handOver, takeHandOver: () => handOver },
      closing: new Closing(),
      onTaken: () => undefined,
    });
    try {
      lease!.start();
      await queue.add('settle', {}, { jobId: 'before' });
      await waitFor('the first job', async () => processed.includes('before'), 15_000);

      // The worker's connections lose Redis and keep reconnecting; the lease goes meanwhile.
      await proxy.close();
      await sleep(1_000);
      handOver = true;
      await waitFor('the hand-over', async () => !lease!.isHeld, 5_000);
      await sleep(500);
      await proxy.open(proxyPort, { host: '127.0.0.1', port: redisServer.port });
      handOver = false;
      await waitFor('the lease taken again', async () => lease!.isHeld, 15_000);

      await queue.add('settle', {}, { jobId: 'after' });
      await waitFor('a job added once the lease is back', async () => processed.includes('after'), 20_000);
    } finally {
      await lease!.release().catch(() => undefined);
      await closeShardWorker(worker, logger, 2_000);
      await queue.close().catch(() => undefined);
      workerRedis.disconnect();
      leaseRedis.disconnect();
      await proxy.close();
    }
  });
});
