/**
 * Redis stopped for several seconds mid-stream (a private redis-server on its own port, with an
 * append-only file so its own data survives the restart): the ingestor spools every unit to its
 * spool file while Redis is away, in order, and drains the spool in order when Redis is back.
 * Result: every valid message in exactly one job, in order per shard, and an empty spool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { SequenceGapRepository } from '@settlement/scylla';
import type { TestKeyspace, TestRedisServer } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { checkAgainstSimulator, checkShardChain, freePort, reachedExpected, readShardJobs, startIngestorProcess, stateKeyOf, waitFor } from './helpers.js';
import { openPrivateRedisBed, type PrivateRedisBed } from './private-redis.js';

let ks: TestKeyspace;
let config: Readonly<SettlementConfig>;
let redisServer: TestRedisServer;
let bed: PrivateRedisBed | undefined;
let redis: Redis;

beforeAll(async () => {
  // With an append-only file (fsync on every write), so its own data survives the restart.
  bed = await openPrivateRedisBed({ appendOnly: true });
  ({ ks, server: redisServer, config, redis } = bed);
});

afterAll(async () => {
  await bed?.close();
});

describe('ingestor with Redis unreachable', () => {
  it('spools while Redis is down and drains in order when it is back, losing nothing', { timeout: 85_000 }, async () => {
    const catalog = new MarketCatalog(config);
    const sim = createSimulator({ market: marketFromConfig(config), messages: 20_000, users: 300, seed: 31, duplicateRate: 0.005, reorderRate: 0.005 });
    const expected = sim.expected();
    const ingestor = startIngestorProcess(config, 'ingestor');
    await ingestor.ready();
    const sending = sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: 4_000 });

    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(config), 'funding')) ?? '0') > 1_000n, 20_000, 20);
    await redisServer.stop('SIGTERM');
    const downAtMs = Date.now();
    await sleep(4_000);
    redisServer.start();
    const downForMs = Date.now() - downAtMs;
    await waitFor('private Redis back', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);

    const report = await sending;
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, expected), 40_000);
    const exit = await ingestor.stop();
    expect(exit.code).toBe(0);

    expect(downForMs).toBeGreaterThanOrEqual(4_000);
    expect(ingestor.logged('Redis write failed; spooling to disk until Redis is back').length).toBeGreaterThan(0);
    const drained = ingestor.logged('spool drained; writing to Redis directly again');
    expect(drained.length).toBeGreaterThan(0);
    expect(drained.reduce((n, l) => n + Number(l['units']), 0)).toBeGreaterThan(10);
    expect(statSync(path.join(config.data_dir, config.backup.spool_file)).size).toBe(0);

    const byShard = new Map<string, SettlementMessage[]>();
    for (const shard of catalog.shards) byShard.set(shard, checkShardChain(await readShardJobs(config, shard, redis)));
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(20_000);
    const gaps = new SequenceGapRepository(ks.client, config.scylladb.keyspace);
    for (const stream of ['global', ...catalog.shards]) expect(await gaps.list(stream)).toEqual([]);
    await sim.close();
  });

  it('stops reading ZMQ when Redis is down and the spool is full, and loses nothing once Redis is back', { timeout: 85_000 }, async () => {
    const catalog = new MarketCatalog(config);
    // A tiny spool and buffer, so both fill while Redis is away.
    const tight: Readonly<SettlementConfig> = {
      ...config,
      redis: { ...config.redis, prefix: '{tight}' },
      zmq: { ...config.zmq, settlement_port: await freePort(), receive_high_water_mark: 1_000 },
      data_dir: path.join(config.data_dir, 'tight'),
      batch: { ...config.batch, buffer_messages_max: 2_000 },
      ingestor: { ...config.ingestor, spool_bytes_max: 256 * 1024 },
    };
    const sim = createSimulator({ market: marketFromConfig(tight), messages: 12_000, users: 200, seed: 32 });
    const expected = sim.expected();
    const ingestor = startIngestorProcess(tight, 'ingestor-tight');
    await ingestor.ready();
    const sending = sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${tight.zmq.settlement_port}`, ratePerSecond: 4_000, sendHighWaterMark: 1_000 });
    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(tight), 'funding')) ?? '0') > 500n, 20_000, 20);
    await redisServer.stop('SIGTERM');
    await waitFor('reads paused', () => ingestor.logged('buffer full; pausing ZMQ reads').length > 0, 20_000);
    // While paused, the sender is held back by ZMQ's high-water marks instead of losing messages.
    await sleep(1_000);
    redisServer.start();
    await waitFor('private Redis back', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);

    const report = await sending;
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, tight, expected), 40_000);
    expect((await ingestor.stop()).code).toBe(0);
    expect(ingestor.logged('spool full; waiting for Redis').length).toBeGreaterThan(0);

    const byShard = new Map<string, SettlementMessage[]>();
    for (const shard of catalog.shards) byShard.set(shard, checkShardChain(await readShardJobs(tight, shard, redis)));
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(12_000);
    await sim.close();
  });

  it('exits 0 on SIGTERM while Redis is down, keeping the spool for the next start to drain', { timeout: 60_000 }, async () => {
    const catalog = new MarketCatalog(config);
    const cfg: Readonly<SettlementConfig> = {
      ...config,
      redis: { ...config.redis, prefix: '{sigterm}' },
      zmq: { ...config.zmq, settlement_port: await freePort() },
      data_dir: path.join(config.data_dir, 'sigterm'),
    };
    const sim = createSimulator({ market: marketFromConfig(cfg), messages: 4_000, users: 100, seed: 33 });
    const first = startIngestorProcess(cfg, 'ingestor-a');
    await first.ready();
    const sending = sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${cfg.zmq.settlement_port}`, ratePerSecond: 4_000 });
    await waitFor('some progress', async () => BigInt((await redis.hget(stateKeyOf(cfg), 'funding')) ?? '0') > 300n, 20_000, 20);
    await redisServer.stop('SIGTERM');
    await sending;
    await sleep(1_000);
    const exit = await first.stop(20_000);
    expect(exit.code).toBe(0);
    const spoolFile = path.join(cfg.data_dir, cfg.backup.spool_file);
    expect(statSync(spoolFile).size).toBeGreaterThan(0);

    redisServer.start();
    await waitFor('private Redis back', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);
    const second = startIngestorProcess(cfg, 'ingestor-b');
    await second.ready();
    expect(second.logged('ingest state loaded')[0]!['spooledUnits']).toBeGreaterThan(0);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, cfg, sim.expected()), 30_000);
    expect((await second.stop()).code).toBe(0);
    expect(statSync(spoolFile).size).toBe(0);
    const byShard = new Map<string, SettlementMessage[]>();
    for (const shard of catalog.shards) byShard.set(shard, checkShardChain(await readShardJobs(cfg, shard, redis)));
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(4_000);
    await sim.close();
  });
});
