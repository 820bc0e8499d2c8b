/**
 * kill -9 of the ingestor mid-stream, then a restart: the new process resumes after the last job
 * in Redis (the state hash is written in the same MULTI as the jobs) and asks the simulator's
 * replay endpoint for everything after it, so the frames the killed process had received but
 * not enqueued come back. Result: every valid message in exactly one job, in order, no gap.
 * The replay serves the malformed frames of the range too: each is dead-lettered exactly once,
 * also one that sat unread in the killed process's socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { DEAD_LETTER_QUEUE, MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { SequenceGapRepository } from '@settlement/scylla';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig, type ReplayServer, type Simulator } from '@settlement/simulator';
import { deadLetterJobId } from '../src/ingestor.js';
import { checkAgainstSimulator, checkShardChain, deletePrefix, freePort, reachedExpected, readShardJobs, redisClient, startIngestorProcess, stateKeyOf, waitFor } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;
let sim: Simulator;
let replay: ReplayServer;

beforeAll(async () => {
  const port = await freePort();
  const base = testConfig({ zmq: { settlement_port: port } });
  sim = createSimulator({ market: marketFromConfig(base), messages: 20_000, users: 300, seed: 21, duplicateRate: 0.005, reorderRate: 0.005, malformedRate: 0.01 });
  replay = await sim.serveReplay('tcp://127.0.0.1:*');
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: port, replay_endpoint: replay.endpoint } }));
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  await sim?.close();
  if (redis !== undefined) {
    await deletePrefix(redis, ks.config.redis.prefix);
    redis.disconnect();
  }
  await ks?.drop();
});

describe('ingestor crash recovery', () => {
  it('loses nothing and duplicates nothing, malformed frames included, when killed with SIGKILL mid-stream and restarted', { timeout: 85_000 }, async () => {
    const config = ks.config;
    const catalog = new MarketCatalog(config);
    const expected = sim.expected();
    const first = startIngestorProcess(config, 'ingestor');
    await first.ready();
    const sending = sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: 5_000 });

    // Kill it once it has enqueued a good part of the stream, while frames are still arriving;
    // stopped for a moment first, so frames pile up unread in its socket and die with it.
    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(config), 'funding')) ?? '0') > 1_500n, 20_000, 20);
    first.kill('SIGSTOP');
    await sleep(300);
    first.kill('SIGKILL');
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    const atKill = await redis.hgetall(stateKeyOf(config));
    await sleep(300);

    const second = startIngestorProcess(config, 'ingestor');
    await second.ready();
    const report = await sending;
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, expected), 40_000);
    const exit = await second.stop();
    expect(exit.code).toBe(0);

    // The restart resumed from the persisted position and asked the engine for the rest.
    expect(second.logged('ingest state loaded')[0]!['state']).toMatchObject(atKill);
    const catchUps = second.logged('replay done').filter((l) => l['why'] === 'catch-up');
    expect(catchUps.length).toBeGreaterThan(0);
    expect(catchUps.reduce((n, l) => n + Number(l['messages']), 0)).toBeGreaterThan(0);
    expect(replay.requests()).toBeGreaterThan(0);

    const byShard = new Map<string, SettlementMessage[]>();
    for (const shard of catalog.shards) byShard.set(shard, checkShardChain(await readShardJobs(config, shard, redis)));
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(20_000);

    // Every malformed frame has its dead-letter job, and there is no other.
    const malformed = new Set(sim.schedule.malformed.map((m) => m.raw));
    expect(malformed.size).toBeGreaterThan(50);
    const missing: string[] = [];
    for (const raw of malformed) if ((await redis.exists(`${config.redis.prefix}:${DEAD_LETTER_QUEUE}:${deadLetterJobId(raw)}`)) !== 1) missing.push(raw);
    expect(missing).toEqual([]);
    expect(await redis.llen(`${config.redis.prefix}:${DEAD_LETTER_QUEUE}:wait`)).toBe(malformed.size);

    const gaps = new SequenceGapRepository(ks.client, config.scylladb.keyspace);
    for (const stream of ['global', ...catalog.shards]) expect(await gaps.list(stream)).toEqual([]);
  });
});
