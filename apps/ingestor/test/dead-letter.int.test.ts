/**
 * Invalid input never crashes the ingestor and is never dropped: each kind of malformed message
 * (not JSON, missing field, wrong type, negative, fractional, above 2^64, unknown asset,
 * inexact quote), a frame that is not UTF-8 and an oversized frame land in the dead letter
 * (Cassandra, under their shard, and the dead-letter queue) with a reason naming the field, and
 * the valid messages around them are enqueued. With Cassandra unreachable too, they go to the
 * failed-trades file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Push } from 'zeromq';
import type { SettlementConfig } from '@settlement/config';
import { DEAD_LETTER_QUEUE, MarketCatalog } from '@settlement/domain';
import { DeadLetterRepository, UNROUTED_SHARD, type StoredDeadLetter } from '@settlement/scylla';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig, MALFORMED_KINDS } from '@settlement/simulator';
import { checkShardChain, deletePrefix, freePort, reachedExpected, readShardJobs, redisClient, startIngestorProcess, waitFor } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;
const FRAME_BYTES_MAX = 4_096;

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: await freePort() }, ingestor: { frame_bytes_max: FRAME_BYTES_MAX } }));
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  await deletePrefix(redis, ks.config.redis.prefix);
  redis.disconnect();
  await ks?.drop();
});

async function sendFrames(endpoint: string, frames: readonly (string | Buffer)[]): Promise<void> {
  const push = new Push({ linger: 5_000 });
  push.connect(endpoint);
  for (const frame of frames) await push.send(frame);
  push.close();
}

async function dlqJobs(config: Readonly<SettlementConfig>): Promise<{ shard: string; reason: string; field: string | null; raw: string; source: string }[]> {
  const queue = new Queue(DEAD_LETTER_QUEUE, { connection: redis, prefix: config.redis.prefix });
  const jobs = await queue.getJobs(['wait', 'active', 'completed', 'failed', 'delayed', 'paused'], 0, -1);
  await queue.close();
  return jobs.map((j) => j.data as { shard: string; reason: string; field: string | null; raw: string; source: string });
}

describe('ingestor dead letters', () => {
  it('dead-letters every kind of malformed message with the field named, and keeps going', { timeout: 60_000 }, async () => {
    const config = ks.config;
    const catalog = new MarketCatalog(config);
    // Alternating valid and malformed messages: one of each malformed kind.
    const sim = createSimulator({ market: marketFromConfig(config), messages: 8, users: 10, seed: 5, malformedRate: 1 });
    expect(sim.schedule.malformed.map((m) => m.kind)).toEqual([...MALFORMED_KINDS]);
    const notUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const oversized = `{"trade_id":1,"pad":"${'x'.repeat(FRAME_BYTES_MAX)}"}`;

    const ingestor = startIngestorProcess(config, 'ingestor');
    await ingestor.ready();
    const endpoint = `tcp://127.0.0.1:${config.zmq.settlement_port}`;
    const frames: (string | Buffer)[] = sim.schedule.entries.map((_e, i) => sim.frameAt(i, Date.now()));
    frames.splice(3, 0, notUtf8, oversized);
    await sendFrames(endpoint, frames);
    await waitFor('the valid messages enqueued', () => reachedExpected(redis, config, sim.expected()), 20_000);

    const repo = new DeadLetterRepository(ks.client, config.scylladb.keyspace);
    let stored: StoredDeadLetter[] = [];
    await waitFor('dead letters in Cassandra', async () => {
      stored = (await Promise.all([UNROUTED_SHARD, ...catalog.shards].map((s) => repo.list(s)))).flat();
      return stored.length >= sim.schedule.malformed.length + 2;
    }, 20_000);
    expect(stored).toHaveLength(sim.schedule.malformed.length + 2);
    for (const m of sim.schedule.malformed) {
      const letter = stored.find((l) => l.raw === m.raw);
      expect(letter, m.kind).toMatchObject({ shard: m.shard, field: m.field, source: 'ingestor' });
      if (m.field === '(root)') expect(letter!.reason).toMatch(/not JSON/);
      else expect(letter!.reason, m.kind).toContain(`${m.field}:`);
    }
    expect(stored.find((l) => l.raw === `base64:${notUtf8.toString('base64')}`)).toMatchObject({ shard: UNROUTED_SHARD, field: '(root)' });
    const big = stored.find((l) => l.reason.includes('exceeds'));
    expect(big).toMatchObject({ field: '(root)' });
    expect(big!.raw).toHaveLength(FRAME_BYTES_MAX);

    // The same content in the dead-letter queue.
    const jobs = await dlqJobs(config);
    expect(jobs).toHaveLength(stored.length);
    for (const letter of stored) {
      expect(jobs.find((j) => j.raw === letter.raw)).toMatchObject({ shard: letter.shard, reason: letter.reason, field: letter.field, source: 'ingestor' });
    }

    // The valid messages around them are all in jobs.
    let enqueued = 0;
    for (const shard of catalog.shards) enqueued += checkShardChain(await readShardJobs(config, shard, redis)).length;
    expect(enqueued).toBe(8);
    const exit = await ingestor.stop();
    expect(exit.code).toBe(0);
    await sim.close();
  });

  it('keeps dead letters in the failed-trades file when Cassandra is unreachable too', { timeout: 60_000 }, async () => {
    const deadPort = await freePort();
    const base = testConfig({ zmq: { settlement_port: await freePort() } });
    // Nothing listens on deadPort: every Cassandra write fails.
    const config: Readonly<SettlementConfig> = { ...base, scylladb: { ...base.scylladb, hosts: [`127.0.0.1:${deadPort}`], request_timeout_ms: 2_000 } };
    const frames = ['not json at all', '{"user_id":1,"sequence_id":1,"event_type":"DEPOSIT","amount":-1,"currency":1,"related_id":0,"created_at":1}'];
    const ingestor = startIngestorProcess(config, 'ingestor-no-cassandra');
    await ingestor.ready();
    await sendFrames(`tcp://127.0.0.1:${config.zmq.settlement_port}`, frames);
    const file = path.join(config.data_dir, config.backup.failed_trades_file);
    let lines: { kind: string; raw: string; reason: string; shard: string; field: string }[] = [];
    await waitFor('the failed-trades file', () => {
      try {
        lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as (typeof lines)[number]);
      } catch {
        return false;
      }
      return lines.length >= 2;
    }, 30_000);
    expect(lines.map((l) => l.raw).sort()).toEqual([...frames].sort());
    expect(lines.every((l) => l.kind === 'dead_letter')).toBe(true);
    expect(lines.find((l) => l.raw === frames[1])).toMatchObject({ shard: 'funding', field: 'amount' });
    // Redis still works, so the dead-letter queue has them as well.
    await sleep(200);
    expect((await dlqJobs(config)).map((j) => j.raw).sort()).toEqual([...frames].sort());
    const exit = await ingestor.stop();
    expect(exit.code).toBe(0);
    await deletePrefix(redis, config.redis.prefix);
  });
});
