/**
 * Older engines publish on a PUB socket (topic frame "settlement", then the JSON frame): the
 * ingestor connects a SUB socket to it and ingests the same way as from its PULL socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { checkAgainstSimulator, checkShardChain, deletePrefix, freePort, reachedExpected, readShardJobs, redisClient, startIngestorProcess, waitFor } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;

beforeAll(async () => {
  const pubPort = await freePort();
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: await freePort(), pub_endpoint: `tcp://127.0.0.1:${pubPort}` }, funding_numbering: 'numbered' }));
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  await deletePrefix(redis, ks.config.redis.prefix);
  redis.disconnect();
  await ks?.drop();
});

describe('ingestor SUB socket', () => {
  it('ingests a PUB engine stream (topic frame + JSON frame) completely and in order', { timeout: 60_000 }, async () => {
    const config = ks.config;
    const catalog = new MarketCatalog(config);
    const sim = createSimulator({ market: marketFromConfig(config), messages: 5_000, users: 100, seed: 41, reorderRate: 0.01, duplicateRate: 0.01 });
    const ingestor = startIngestorProcess(config, 'ingestor');
    await ingestor.ready();
    const report = await sim.send({ mode: 'pub', endpoint: config.zmq.pub_endpoint!, ratePerSecond: 5_000, topic: config.zmq.topic });
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, sim.expected()), 30_000);
    expect((await ingestor.stop()).code).toBe(0);
    const byShard = new Map<string, SettlementMessage[]>();
    for (const shard of catalog.shards) byShard.set(shard, checkShardChain(await readShardJobs(config, shard, redis)));
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(5_000);
    await sim.close();
  });
});
