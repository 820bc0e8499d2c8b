/**
 * Redis losing its data (issue 16.2): a private redis-server without persistence, like the
 * machine's, killed with SIGKILL and started again empty while the ingestor runs. Some jobs were
 * already settled (their shard watermarks are in Cassandra); the rest were only queued and die
 * with Redis. The ingestor must notice that its position went back, rebuild it from the settled
 * watermarks, and have the engine's replay re-send the rest, so every message after each
 * watermark is enqueued again, once, in jobs that continue the settler's chain — and the stream
 * goes on. The same on a start against an empty Redis; and without a replay endpoint it halts,
 * naming the range, instead of skipping it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, parseWireMessage, type SettlementMessage } from '@settlement/domain';
import { TestRedisServer, createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig, type ReplayServer, type Simulator } from '@settlement/simulator';
import { checkShardChain, freePort, reachedExpected, readShardJobs, redisClient, startIngestorProcess, stateKeyOf, waitFor, type IngestorProcess } from './helpers.js';

let ks: TestKeyspace;
let redisPort: number;
let redisServer: TestRedisServer;
let redis: Redis;
let sim: Simulator;
let replay: ReplayServer;
let config: Readonly<SettlementConfig>;
const ingestors: IngestorProcess[] = [];

async function redisUp(): Promise<void> {
  await waitFor('private Redis', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000, 20);
}

/** Marks a shard settled up to `lastSeq`, as a settler's batch does (shard_watermarks). */
async function settleUpTo(shard: string, lastSeq: bigint): Promise<void> {
  await ks.client.execute(`UPDATE ${config.scylladb.keyspace}.shard_watermarks SET last_seq = ? WHERE shard = ?`, [lastSeq, shard], { prepare: true });
}

/** Every message of `shard` after `afterSeq` is in the queue exactly once, in a chain from `afterSeq`, with the content sent. */
async function checkRequeuedAfter(shard: string, afterSeq: bigint, catalog: MarketCatalog): Promise<number> {
  const messages: SettlementMessage[] = checkShardChain(await readShardJobs(config, shard, redis), afterSeq);
  const want = sim.messages.filter((m) => m.shard === shard && m.seq > afterSeq);
  expect(messages.map((m) => m.seq)).toEqual(want.map((m) => m.seq));
  for (const [i, m] of want.entries()) {
    const parsed = parseWireMessage(sim.journal.bytesFor(m, 0), catalog);
    if (!parsed.ok) throw new Error(parsed.reason);
    const got = messages[i]!;
    const same = got.kind === 'trade' && parsed.message.kind === 'trade' ? got.tradeId === parsed.message.tradeId : got.kind === 'funding' && parsed.message.kind === 'funding' && got.amount === parsed.message.amount;
    if (!same) throw new Error(`shard ${shard} seq ${m.seq}: job content differs from what was sent`);
  }
  return want.length;
}

beforeAll(async () => {
  redisPort = await freePort();
  const base = testConfig({ zmq: { settlement_port: await freePort() } });
  sim = createSimulator({ market: marketFromConfig(base), messages: 20_000, users: 300, seed: 41, duplicateRate: 0.005, reorderRate: 0.005 });
  replay = await sim.serveReplay('tcp://127.0.0.1:*');
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: base.zmq.settlement_port, replay_endpoint: replay.endpoint } }));
  // Like the machine's Redis: no RDB snapshots, no append-only file. A restart comes back empty.
  redisServer = new TestRedisServer(redisPort, { dir: path.join(ks.config.data_dir, 'private-redis') });
  config = { ...ks.config, redis: { ...ks.config.redis, url: redisServer.url } };
  redisServer.start();
  redis = redisClient(config.redis.url);
  await redisUp();
});

afterAll(async () => {
  for (const ingestor of ingestors) ingestor.kill('SIGKILL');
  await sim?.close();
  redis?.disconnect();
  await redisServer?.stop();
  await ks?.drop();
});

describe('ingestor when Redis loses its data', () => {
  it('re-enqueues everything after the settled watermarks when Redis comes back empty mid-stream, and the stream goes on', { timeout: 90_000 }, async () => {
    const catalog = new MarketCatalog(config);
    const expected = sim.expected();
    const ingestor = startIngestorProcess(config, 'ingestor');
    ingestors.push(ingestor);
    await ingestor.ready();
    const sending = sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: 4_000 });
    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(config), 'funding')) ?? '0') > 1_000n, 20_000, 20);

    // The settlers applied about half of what is queued: each shard's watermark is the last
    // sequence of one of its jobs. Everything after it lives only in Redis.
    const settled = new Map<string, bigint>();
    for (const shard of catalog.shards) {
      const { jobs } = await readShardJobs(config, shard, redis);
      expect(jobs.length).toBeGreaterThan(1);
      const job = jobs[Math.floor(jobs.length / 2)]!.job;
      settled.set(shard, job.messages[job.messages.length - 1]!.seq);
      await settleUpTo(shard, settled.get(shard)!);
    }
    const before = await redis.hgetall(stateKeyOf(config));

    await redisServer.stop();
    redisServer.start();
    await redisUp();
    expect(await redis.dbsize()).toBeLessThan(5);

    const report = await sending;
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, expected), 50_000);
    expect((await ingestor.stop()).code).toBe(0);

    // Every message after each shard's watermark is queued again, once, continuing its chain.
    let total = 0;
    for (const shard of catalog.shards) total += await checkRequeuedAfter(shard, settled.get(shard)!, catalog);
    expect(total).toBeGreaterThan(10_000);

    const lost = ingestor.logged('ingest position in Redis went back (Redis lost writes); rebuilding it from the shard watermarks');
    expect(lost.length).toBe(1);
    const rebuilt = ingestor.logged('ingest position rebuilt from the shard watermarks; replaying from there');
    expect(rebuilt).toHaveLength(1);
    const rebuiltState = rebuilt[0]!['state'] as Record<string, string>;
    for (const [shard, seq] of settled) expect(rebuiltState[shard]).toBe(seq.toString());
    // Every trade not settled in some shard lies after the lowest trade watermark.
    const tradeMin = [...settled].filter(([s]) => s !== 'funding').reduce((m, [, seq]) => (seq < m ? seq : m), 1n << 64n);
    expect(rebuiltState['global']).toBe(tradeMin.toString());
    expect(BigInt(before['funding']!)).toBeGreaterThan(settled.get('funding')!);
  });

  it('starts from the settled watermarks, not from 0, when it starts on an empty Redis', { timeout: 60_000 }, async () => {
    const catalog = new MarketCatalog(config);
    const expected = sim.expected();
    // Redis restarted without its data while no ingestor ran; the settlers had gone further.
    await redisServer.stop();
    redisServer.start();
    await redisUp();
    const settled = new Map<string, bigint>();
    for (const shard of catalog.shards) {
      const last = sim.messages.filter((m) => m.shard === shard);
      settled.set(shard, last[Math.floor(last.length * 0.8)]!.seq);
      await settleUpTo(shard, settled.get(shard)!);
    }
    const ingestor = startIngestorProcess(config, 'ingestor-empty-start');
    ingestors.push(ingestor);
    await ingestor.ready();
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, expected), 40_000);
    expect((await ingestor.stop()).code).toBe(0);
    for (const shard of catalog.shards) await checkRequeuedAfter(shard, settled.get(shard)!, catalog);
    const absent = ingestor.logged('ingest state absent in Redis; starting from the shard watermarks in Cassandra, not from 0');
    expect(absent).toHaveLength(1);
  });

  it('without a replay endpoint, halts and names the range Redis lost instead of skipping it', { timeout: 60_000 }, async () => {
    const cfg: Readonly<SettlementConfig> = {
      ...config,
      redis: { ...config.redis, prefix: '{noreplay}' },
      zmq: { ...config.zmq, settlement_port: await freePort(), replay_endpoint: undefined },
      data_dir: path.join(config.data_dir, 'no-replay'),
    };
    // A fresh stream: nothing of it is settled.
    for (const shard of ['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']) await ks.client.execute(`DELETE FROM ${config.scylladb.keyspace}.shard_watermarks WHERE shard = ?`, [shard], { prepare: true });
    const small = createSimulator({ market: marketFromConfig(cfg), messages: 6_000, users: 100, seed: 42 });
    const ingestor = startIngestorProcess(cfg, 'ingestor-no-replay');
    ingestors.push(ingestor);
    await ingestor.ready();
    const sending = small.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${cfg.zmq.settlement_port}`, ratePerSecond: 3_000 });
    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(cfg), 'funding')) ?? '0') > 300n, 20_000, 20);
    const before = await redis.hgetall(stateKeyOf(cfg));
    await redisServer.stop();
    redisServer.start();
    await redisUp();
    await waitFor('halted', () => ingestor.logged('Redis lost this range and there is no replay endpoint (zmq.replay_endpoint) to re-send it: ingestion halted, nothing skipped; re-drive the range from the engine, then restart the ingestor').length > 0, 20_000);
    const halted = ingestor.logged('Redis lost this range and there is no replay endpoint (zmq.replay_endpoint) to re-send it: ingestion halted, nothing skipped; re-drive the range from the engine, then restart the ingestor');
    const funding = halted.find((l) => l['shard'] === 'funding')!;
    expect(funding['fromSeq']).toBe('1');
    expect(BigInt(funding['toSeq'] as string)).toBeGreaterThanOrEqual(BigInt(before['funding']!));
    await sending;
    // Nothing was written on top of the lost range: no job continues a chain Redis no longer has.
    expect(await redis.hgetall(stateKeyOf(cfg))).toEqual({});
    for (const shard of ['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']) expect((await readShardJobs(cfg, shard, redis)).jobs).toEqual([]);
    ingestor.kill('SIGKILL');
    await small.close();
  });
});
