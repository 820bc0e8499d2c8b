/**
 * A 20,000-message simulated stream (with duplicates, adjacent swaps and malformed messages
 * injected) through a real ingestor process over real ZMQ into real Redis: every valid message
 * is in exactly one job, in order per shard, with the job chain intact; every malformed one is
 * in the dead letter (Cassandra and the dead-letter queue) with its field named; no gap is
 * recorded; SIGTERM flushes and exits 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEAD_LETTER_QUEUE, MarketCatalog, heartbeatPattern, type SettlementMessage } from '@settlement/domain';
import { DeadLetterRepository, SequenceGapRepository, UNROUTED_SHARD } from '@settlement/scylla';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { checkAgainstSimulator, checkShardChain, deletePrefix, freePort, reachedExpected, readShardJobs, redisClient, startIngestorProcess, waitFor } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;

beforeAll(async () => {
  const port = await freePort();
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: port }, ingestor: { heartbeat_interval_ms: 300 } }));
  redis = redisClient(ks.config.redis.url);
});

afterAll(async () => {
  await deletePrefix(redis, ks.config.redis.prefix);
  redis.disconnect();
  await ks?.drop();
});

describe('ingestor: ZMQ PUSH → per-shard BullMQ jobs', () => {
  it('puts every valid message of a 20,000-message stream in exactly one job, in order per shard', { timeout: 80_000 }, async () => {
    const config = ks.config;
    const catalog = new MarketCatalog(config);
    const sim = createSimulator({
      market: marketFromConfig(config),
      messages: 20_000,
      users: 300,
      seed: 11,
      duplicateRate: 0.01,
      reorderRate: 0.01,
      malformedRate: 0.002,
    });
    const expected = sim.expected();
    expect(expected.counts.duplicatesInjected).toBeGreaterThan(100);
    expect(expected.counts.swapsInjected).toBeGreaterThan(100);
    expect(expected.malformed.length).toBeGreaterThanOrEqual(8);

    const ingestor = startIngestorProcess(config, 'ingestor');
    await ingestor.ready();
    const report = await sim.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: 8_000 });
    expect(report.sent).toBe(sim.schedule.entries.length);
    await waitFor('every shard enqueued to its last sequence', () => reachedExpected(redis, config, expected), 30_000);

    // The heartbeat publishes the status (per-shard last enqueued) and the prom-client metrics.
    const heartbeatKey = async () => (await redis.keys(heartbeatPattern(config.redis.prefix, 'ingestor')))[0];
    let beat: { app: string; status: { lastEnqueued: Record<string, string> }; metrics: { name: string; values: { value: number; labels: Record<string, string> }[] }[] } | undefined;
    await waitFor('a heartbeat with the final counts', async () => {
      const key = await heartbeatKey();
      beat = key === undefined ? undefined : JSON.parse((await redis.get(key)) ?? 'null');
      const received = beat?.metrics.find((m) => m.name === 'ingestor_messages_received_total')?.values.reduce((n, v) => n + v.value, 0);
      // Partial jobs wait for the (absent) settler's backlog to clear, up to
      // ingestor.backlog_wait_ms, so the final positions may come a beat after the counts.
      const lastEnqueued = beat?.status.lastEnqueued ?? {};
      const positionsFinal = Object.entries(expected.lastSequences.bySymbol).every(([shard, seq]) => lastEnqueued[shard] === seq);
      return received === sim.schedule.entries.length && positionsFinal;
    }, 15_000);
    expect(beat!.app).toBe('ingestor');
    expect(beat!.status.lastEnqueued).toMatchObject(expected.lastSequences.bySymbol);
    const metric = (name: string) => beat!.metrics.find((m) => m.name === name)!.values;
    expect(metric('ingestor_messages_enqueued_total').reduce((n, v) => n + v.value, 0)).toBe(20_000);
    expect(metric('ingestor_messages_invalid_total').reduce((n, v) => n + v.value, 0)).toBe(expected.malformed.length);
    expect(metric('ingestor_enqueue_latency_seconds').find((v) => v.labels['le'] === '+Inf')!.value).toBeGreaterThan(0);
    const exit = await ingestor.stop();
    expect(exit.code).toBe(0);
    expect(ingestor.logged('ingestor flushed')).toHaveLength(1);

    const byShard = new Map<string, SettlementMessage[]>();
    let jobs = 0;
    for (const shard of catalog.shards) {
      const shardJobs = await readShardJobs(config, shard, redis);
      jobs += shardJobs.jobs.length;
      for (const { job } of shardJobs.jobs) expect(job.messages.length).toBeLessThanOrEqual(config.batch.max_messages);
      byShard.set(shard, checkShardChain(shardJobs));
    }
    expect(checkAgainstSimulator(sim, byShard, catalog)).toBe(20_000);
    // Micro-batching happened: far fewer jobs than messages.
    expect(jobs).toBeLessThan(20_000 / 5);

    // Duplicates were dropped, not enqueued; nothing was lost, so no gap was recorded.
    const gaps = new SequenceGapRepository(ks.client, config.scylladb.keyspace);
    for (const stream of ['global', ...catalog.shards]) expect(await gaps.list(stream)).toEqual([]);

    // Every malformed message is in the dead letter, under its shard, with the field named.
    const deadLetters = new DeadLetterRepository(ks.client, config.scylladb.keyspace);
    const stored = (await Promise.all([UNROUTED_SHARD, ...catalog.shards].map((s) => deadLetters.list(s, 1000)))).flat();
    expect(stored).toHaveLength(expected.malformed.length);
    for (const m of expected.malformed) {
      const letter = stored.find((l) => l.raw === m.raw);
      expect(letter, m.kind).toBeDefined();
      expect(letter!.shard).toBe(m.shard);
      expect(letter!.source).toBe('ingestor');
      expect(letter!.field).toBe(m.field);
      // The reason names the field; a frame that is not JSON at all has no field but says so.
      if (m.field === '(root)') expect(letter!.reason).toMatch(/not JSON/);
      else expect(letter!.reason).toContain(`${m.field}:`);
    }
    const dlq = new Queue(DEAD_LETTER_QUEUE, { connection: redis, prefix: config.redis.prefix });
    const dlqJobs = await dlq.getJobs(['wait', 'active', 'completed', 'failed', 'delayed', 'paused'], 0, -1);
    await dlq.close();
    expect(dlqJobs.map((j) => (j.data as { raw: string }).raw).sort()).toEqual(expected.malformed.map((m) => m.raw).sort());
    expect(dlqJobs.every((j) => typeof (j.data as { reason: string }).reason === 'string' && (j.data as { source: string }).source === 'ingestor')).toBe(true);

    // The heartbeat's metrics counted what happened.
    // The ingestor's own counts agree: every frame received, duplicates dropped, no gap.
    const final = ingestor.logged('ingestor flushed')[0]!;
    expect(final['status']).toMatchObject({
      lastEnqueued: expected.lastSequences.bySymbol,
      totals: { received: sim.schedule.entries.length, invalid: expected.malformed.length, duplicates: expected.counts.duplicatesInjected, gaps: 0, enqueued: 20_000 },
    });
    expect(ingestor.logged('sequence gap recorded')).toEqual([]);
    await sim.close();
  });
});
