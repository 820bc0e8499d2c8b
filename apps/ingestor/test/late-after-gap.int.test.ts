/**
 * A message that arrives after its sequence was recorded as a gap (issue 18.2), on real ZMQ,
 * Redis and Cassandra: it is enqueued when its shard can still take it in order, else
 * dead-lettered with a reason saying it arrived after its gap was recorded; either way the
 * gap record says it was filled. And a graceful shutdown with a hole still open persists the
 * position only up to the hole, so the restart's catch-up replay asks for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Push, Reply } from 'zeromq';
import type { SettlementConfig } from '@settlement/config';
import { DEAD_LETTER_QUEUE } from '@settlement/domain';
import { SequenceGapRepository } from '@settlement/scylla';
import { createTestKeyspace, testConfig, uniqueName, type TestKeyspace } from '@settlement/testing';
import { checkShardChain, deletePrefix, freePort, readShardJobs, redisClient, startIngestorProcess, stateKeyOf, waitFor, type IngestorProcess } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;
const running: IngestorProcess[] = [];
/** Prefixes of the shared Redis this file used, deleted at the end. */
const prefixes: string[] = [];
const freshPrefix = (): string => {
  const prefix = `{${uniqueName('t')}}`;
  prefixes.push(prefix);
  return prefix;
};

const PAIRS = { btc_usdt: [1, 2], eth_usdt: [3, 2] } as const;

function trade(seq: number, symbol: keyof typeof PAIRS): string {
  const [base, quote] = PAIRS[symbol];
  return (
    `{"trade_id":${seq},"buy_order_id":1,"sell_order_id":2,"buyer_user_id":10,"seller_user_id":11,"price":100000000,"quantity":5,` +
    `"base_asset":${base},"quote_asset":${quote},"buyer_refund":0,"seller_refund":0,"match_seq":${seq},"output_sequence":${seq},"settled_at":1,` +
    `"buyer_quote_version":1,"buyer_base_version":1,"seller_base_version":1,"seller_quote_version":1}`
  );
}

async function sendFrames(endpoint: string, frames: readonly string[]): Promise<void> {
  const push = new Push({ linger: 5_000 });
  push.connect(endpoint);
  for (const frame of frames) await push.send(frame);
  push.close();
}

async function dlqJobs(config: Readonly<SettlementConfig>): Promise<{ shard: string; reason: string; field: string | null; raw: string }[]> {
  const queue = new Queue(DEAD_LETTER_QUEUE, { connection: redis, prefix: config.redis.prefix });
  const jobs = await queue.getJobs(['wait', 'active', 'completed', 'failed', 'delayed', 'paused'], 0, -1);
  await queue.close();
  return jobs.map((j) => j.data as { shard: string; reason: string; field: string | null; raw: string });
}

/** An engine replay endpoint that serves only the frames it was given (stream "global"). */
async function fakeReplay(): Promise<{ endpoint: string; frames: Map<number, string>; close: () => void }> {
  const socket = new Reply({ linger: 0 });
  const port = await freePort();
  await socket.bind(`tcp://127.0.0.1:${port}`);
  const frames = new Map<number, string>();
  void (async () => {
    for await (const [request] of socket) {
      const { shard, from_sequence: from, limit } = JSON.parse(request!.toString()) as { shard: string; from_sequence: number; limit: number };
      const out = shard === 'global' ? [...frames].filter(([seq]) => seq >= from).sort(([a], [b]) => a - b).slice(0, limit).map(([, f]) => f) : [];
      await socket.send(out.length > 0 ? out : ['']);
    }
  })().catch(() => undefined);
  return { endpoint: `tcp://127.0.0.1:${port}`, frames, close: () => socket.close() };
}

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: await freePort() } }));
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  for (const p of running) p.kill('SIGKILL');
  for (const prefix of [ks.config.redis.prefix, ...prefixes]) await deletePrefix(redis, prefix);
  redis.disconnect();
  await ks?.drop();
});

describe('a message after its gap was recorded', () => {
  it('is enqueued when its shard can still take it in order, dead-lettered with the reason when not, and the gap record says it was filled', { timeout: 60_000 }, async () => {
    const config: Readonly<SettlementConfig> = { ...ks.config, redis: { ...ks.config.redis, prefix: freshPrefix() }, ingestor: { ...ks.config.ingestor, reorder_window_ms: 50 } };
    const endpoint = `tcp://127.0.0.1:${config.zmq.settlement_port}`;
    const ingestor = startIngestorProcess(config, 'ingestor-late');
    running.push(ingestor);
    await ingestor.ready();
    const gaps = new SequenceGapRepository(ks.client, config.scylladb.keyspace);

    await sendFrames(endpoint, [trade(1, 'eth_usdt'), trade(4, 'btc_usdt')]);
    await waitFor('gap 2-3 recorded', async () => (await gaps.list('global')).length === 1, 10_000);
    expect(await gaps.list('global')).toMatchObject([{ fromSeq: 2n, toSeq: 3n }]);
    await waitFor('1 and 4 enqueued', async () => (await redis.hget(stateKeyOf(config), 'global')) === '4', 10_000);

    // 2 (eth_usdt, whose last is 1) can still apply in order; 3 (btc_usdt, already at 4) cannot.
    await sendFrames(endpoint, [trade(2, 'eth_usdt'), trade(3, 'btc_usdt')]);
    await waitFor('2 enqueued', async () => (await redis.hget(stateKeyOf(config), 'eth_usdt')) === '2', 10_000);
    const eth = await readShardJobs(config, 'eth_usdt', redis);
    expect(checkShardChain(eth).map((m) => m.seq)).toEqual([1n, 2n]);
    expect(eth.jobs.map((j) => j.id)).toEqual(['eth_usdt-1-1', 'eth_usdt-2-2']);
    expect(checkShardChain(await readShardJobs(config, 'btc_usdt', redis)).map((m) => m.seq)).toEqual([4n]);

    await waitFor('3 dead-lettered', async () => (await dlqJobs(config)).length === 1, 10_000);
    const [dead] = await dlqJobs(config);
    expect(dead).toMatchObject({ shard: 'btc_usdt', field: 'output_sequence', raw: trade(3, 'btc_usdt') });
    expect(dead!.reason).toBe(
      "Invalid message: output_sequence 3 arrived after its gap 2-3 of stream global was recorded, and shard btc_usdt had already taken 4; applying it now would break the shard's order",
    );
    await waitFor('gap marked filled', async () => (await gaps.list('global'))[0]!.filled.size === 2, 10_000);
    expect([...(await gaps.list('global'))[0]!.filled]).toEqual([
      [2n, 'settled'],
      [3n, 'dead_letter'],
    ]);
    // The stream goes on after them, and no write of this process is taken for Redis losing one.
    await sendFrames(endpoint, [trade(5, 'btc_usdt')]);
    await waitFor('5 enqueued', async () => (await redis.hget(stateKeyOf(config), 'btc_usdt')) === '5', 10_000);
    expect((await ingestor.stop()).code).toBe(0);
    expect(await redis.hget(stateKeyOf(config), 'global')).toBe('5');
    expect(ingestor.logged('message arrived after its gap was recorded')).toHaveLength(2);
    expect(ingestor.logged('ingest position in Redis went back (Redis lost writes); rebuilding it from the shard watermarks')).toEqual([]);
  });

  it('a graceful shutdown persists the position only up to an open hole, and the restart replay asks for it', { timeout: 60_000 }, async () => {
    const engine = await fakeReplay();
    // The keyspace is shared with the test above: only gaps recorded from now on count here.
    const startedAt = Date.now();
    const gaps = new SequenceGapRepository(ks.client, ks.config.scylladb.keyspace);
    const gapsSinceStart = async () => (await gaps.list('global')).filter((g) => g.detectedAt.getTime() >= startedAt);
    const config: Readonly<SettlementConfig> = {
      ...ks.config,
      redis: { ...ks.config.redis, prefix: freshPrefix() },
      zmq: { ...ks.config.zmq, settlement_port: await freePort(), replay_endpoint: engine.endpoint },
      // The hole stays open until the shutdown.
      ingestor: { ...ks.config.ingestor, reorder_window_ms: 60_000 },
    };
    const endpoint = `tcp://127.0.0.1:${config.zmq.settlement_port}`;
    const first = startIngestorProcess(config, 'ingestor-shutdown');
    running.push(first);
    await first.ready();
    engine.frames.set(1, trade(1, 'btc_usdt'));
    await sendFrames(endpoint, [trade(1, 'btc_usdt'), trade(3, 'btc_usdt')]);
    await waitFor('1 enqueued', async () => (await redis.hget(stateKeyOf(config), 'global')) === '1', 10_000);
    // SIGTERM while 2 is missing: the last replay try does not have it either.
    expect((await first.stop()).code).toBe(0);
    expect(await redis.hgetall(stateKeyOf(config))).toEqual({ btc_usdt: '1', global: '1' });
    expect(await gapsSinceStart()).toEqual([]);

    // The engine has 2 (and 3) by the restart: the catch-up replay from the position gets both.
    engine.frames.set(2, trade(2, 'btc_usdt'));
    engine.frames.set(3, trade(3, 'btc_usdt'));
    const second = startIngestorProcess(config, 'ingestor-shutdown');
    running.push(second);
    await second.ready();
    await waitFor('2 and 3 enqueued', async () => (await redis.hget(stateKeyOf(config), 'global')) === '3', 10_000);
    expect((await second.stop()).code).toBe(0);
    expect(checkShardChain(await readShardJobs(config, 'btc_usdt', redis)).map((m) => m.seq)).toEqual([1n, 2n, 3n]);
    expect(await gapsSinceStart()).toEqual([]);
    engine.close();
  });
});
