/**
 * A halted shard's range re-sent from the engine (issue 16: nothing lost, nothing skipped). A
 * settler whose chain has a hole no job in Redis holds records the range in Redis; the
 * ingestor's Redriver asks the engine's real replay endpoint (the simulator's, over ZMQ) for the
 * shard's messages in it and adds jobs that continue the chain from the range's start.
 */
import type { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketCatalog, decodeSettlementJob, encodeHaltedShardRange, haltedShardsKey, type SettlementMessage } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { createSimulator, marketFromConfig, type ReplayServer, type Simulator } from '@settlement/simulator';
import { freePort, testConfig } from '@settlement/testing';
import { Redriver } from '../src/redrive.js';
import { ReplayClient } from '../src/replay-client.js';

const config = testConfig();
const catalog = new MarketCatalog(config);
const redis = createRedisConnection(config.redis.url);
const queues = new Map<string, Queue>(catalog.shards.map((shard) => [shard, createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix })]));
let sim: Simulator;
let server: ReplayServer;
let replay: ReplayClient;

beforeAll(async () => {
  sim = createSimulator({ market: marketFromConfig(config), messages: 400, users: 20, seed: 7 });
  // Everything journaled, as an engine's output log is.
  sim.schedule.entries.forEach((_, i) => sim.frameAt(i, Date.now()));
  const port = await freePort();
  server = await sim.serveReplay(`tcp://127.0.0.1:${port}`);
  replay = new ReplayClient(`tcp://127.0.0.1:${port}`, { timeoutMs: 2_000, pageMessages: 50 });
});

afterAll(async () => {
  replay?.close();
  await server?.close();
  await sim?.close();
  for (const queue of queues.values()) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  await redis.quit();
});

function redriver(withReplay: boolean, readWatermarks?: () => Promise<ReadonlyMap<string, bigint>>): Redriver {
  return new Redriver({
    ...(readWatermarks === undefined ? {} : { readWatermarks }),
    redis,
    prefix: config.redis.prefix,
    queues,
    replay: withReplay ? replay : undefined,
    catalog,
    sequenceScope: config.sequence_scope,
    jobMessagesMax: 7,
    pollIntervalMs: 60_000,
    retryAfterMs: 60_000,
    logger: pino({ level: 'silent' }),
  });
}

async function jobsOf(shard: string): Promise<{ prevLastSeq: bigint; messages: SettlementMessage[] }[]> {
  const jobs = await queues.get(shard)!.getJobs(['waiting'], 0, 1_000, true);
  return jobs.map((job) => decodeSettlementJob(job.data)).map((j) => ({ prevLastSeq: j.prevLastSeq, messages: j.messages }));
}

describe('Redriver', () => {
  it('re-sends the messages of a halted range as jobs continuing the chain from its start, and not twice', async () => {
    const shard = 'btc_usdt';
    const own = sim.messages.filter((m) => m.shard === shard).map((m) => m.seq);
    expect(own.length).toBeGreaterThan(30);
    // The shard holds up to its 5th message; the job in hand follows its 25th.
    const afterSeq = own[4]!;
    const throughSeq = own[24]!;
    await redis.hset(haltedShardsKey(config.redis.prefix), shard, encodeHaltedShardRange({ afterSeq, throughSeq, haltedAtMs: Date.now() }));

    const r = redriver(true);
    await r.poll();
    const jobs = await jobsOf(shard);
    const resent = jobs.flatMap((j) => j.messages.map((m) => m.seq)).sort((a, b) => (a < b ? -1 : 1));
    expect(resent).toEqual(own.slice(5, 25));
    // Chained: each job's predecessor is the last message of the one before, from afterSeq.
    const ordered = [...jobs].sort((a, b) => (a.prevLastSeq < b.prevLastSeq ? -1 : 1));
    let prev = afterSeq;
    for (const job of ordered) {
      expect(job.prevLastSeq).toBe(prev);
      expect(job.messages.length).toBeLessThanOrEqual(7);
      prev = job.messages.at(-1)!.seq;
    }
    expect(prev).toBe(throughSeq);
    // Exact copies of what the engine sent.
    const expected = sim.messages.filter((m) => m.shard === shard && m.seq > afterSeq && m.seq <= throughSeq);
    expect(ordered.flatMap((j) => j.messages).map((m) => (m.kind === 'trade' ? m.tradeId : 0n)).length).toBe(expected.length);

    // Polled again while the settler applies it: not re-sent a second time.
    await r.poll();
    expect((await jobsOf(shard)).length).toBe(jobs.length);
  });

  it('adds nothing without a replay endpoint: the shard stays halted (and the log says how to re-send it)', async () => {
    const shard = 'eth_usdt';
    await redis.hset(haltedShardsKey(config.redis.prefix), shard, encodeHaltedShardRange({ afterSeq: 1n, throughSeq: 50n, haltedAtMs: Date.now() }));
    await redriver(false).poll();
    expect(await jobsOf(shard)).toEqual([]);
  });

  it('does not re-send a range the stored watermark has reached (a stale entry), and removes the entry only while unchanged', async () => {
    const shard = 'btc_eth';
    const own = sim.messages.filter((m) => m.shard === shard).map((m) => m.seq);
    const key = haltedShardsKey(config.redis.prefix);
    const range = { afterSeq: own[2]!, throughSeq: own[12]!, haltedAtMs: Date.now() };
    await redis.hset(key, shard, encodeHaltedShardRange(range));
    // The settler that recorded it died; another one repaired the chain past throughSeq.
    let watermark = own[15]!;
    let failing = false;
    const reads = async () => {
      if (failing) throw new Error('Cassandra down');
      return new Map([[shard, watermark]]);
    };
    await redriver(true, reads).poll();
    expect(await jobsOf(shard)).toEqual([]);
    expect(await redis.hexists(key, shard)).toBe(0);

    // A settler halts again (a new range) between the read of the hash and the removal: kept.
    const newer = encodeHaltedShardRange({ afterSeq: own[14]!, throughSeq: own[20]!, haltedAtMs: Date.now() + 1 });
    await redis.hset(key, shard, encodeHaltedShardRange(range));
    await redriver(true, async () => {
      await redis.hset(key, shard, newer);
      return reads();
    }).poll();
    expect(await redis.hget(key, shard)).toBe(newer);
    expect(await jobsOf(shard)).toEqual([]);

    // Still behind it: re-sent as before.
    watermark = own[5]!;
    await redis.hset(key, shard, encodeHaltedShardRange(range));
    await redriver(true, reads).poll();
    expect((await jobsOf(shard)).flatMap((j) => j.messages.map((m) => m.seq)).sort((a, b) => (a < b ? -1 : 1))).toEqual(own.slice(3, 13));
    expect(await redis.hexists(key, shard)).toBe(1);

    // The watermarks cannot be read: re-sent (re-sending is safe, skipping is not).
    await queues.get(shard)!.obliterate({ force: true });
    failing = true;
    await redriver(true, reads).poll();
    expect((await jobsOf(shard)).length).toBeGreaterThan(0);
    await redis.hdel(key, shard);
  });

  it('re-sends a reapply range (the watermark\'s own batch, lost from Redis) while the watermark is at its end, and drops it once past', async () => {
    const shard = 'btc_usdt';
    await queues.get(shard)!.obliterate({ force: true });
    const own = sim.messages.filter((m) => m.shard === shard).map((m) => m.seq);
    expect(own.length).toBeGreaterThan(12);
    const key = haltedShardsKey(config.redis.prefix);
    const range = { afterSeq: own[3]!, throughSeq: own[9]!, haltedAtMs: Date.now(), reapply: true };
    let watermark = own[9]!;
    const reads = async () => new Map([[shard, watermark]]);
    await redis.hset(key, shard, encodeHaltedShardRange(range));
    await redriver(true, reads).poll();
    const jobs = await jobsOf(shard);
    expect(jobs.flatMap((j) => j.messages.map((m) => m.seq)).sort((a, b) => (a < b ? -1 : 1))).toEqual(own.slice(4, 10));
    expect(jobs.map((j) => j.prevLastSeq)).toContain(own[3]!);
    expect(await redis.hexists(key, shard)).toBe(1);

    // The settler applied it and went on: the entry is stale, not re-sent, removed.
    await queues.get(shard)!.obliterate({ force: true });
    watermark = own[10]!;
    await redriver(true, reads).poll();
    expect(await jobsOf(shard)).toEqual([]);
    expect(await redis.hexists(key, shard)).toBe(0);
  });
});
