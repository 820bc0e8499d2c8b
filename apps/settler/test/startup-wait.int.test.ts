/**
 * A settler started while Cassandra cannot be reached waits for it instead of exiting (under a
 * supervisor it would otherwise crash-loop through a Cassandra restart), then settles normally.
 * Cassandra "comes back" as a TCP proxy to the test stack's Cassandra opened on the port the
 * settler was given. A keyspace that does not exist still fails the start at once.
 */
import type { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, createTestKeyspace, freePort, testConfig, withCassandraHost, type TestKeyspace } from '@settlement/testing';
import { MarketCatalog } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { BalanceRepository, WatermarkRepository } from '@settlement/scylla';
import { startSettler, type RunningSettler } from '../src/settler.js';
import { enqueue, expectBalances, waitForWatermarks } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

let ks: TestKeyspace;
let redis: ReturnType<typeof createRedisConnection>;
const queues = new Map<string, Queue>();
const proxy = new TcpProxy();
let settler: RunningSettler | undefined;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ settler: { retry_max_ms: 500 } }));
  redis = createRedisConnection(ks.config.redis.url);
  for (const shard of new MarketCatalog(ks.config).shards) queues.set(shard, createSettlementQueue(shard, { connection: redis, prefix: ks.config.redis.prefix }));
});

afterAll(async () => {
  await settler?.close();
  await proxy.close();
  for (const queue of queues.values()) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  await redis?.quit();
  await ks?.drop();
});

describe('settler start-up while Cassandra is unreachable', () => {
  it('waits for Cassandra, then settles a stream exactly', async () => {
    const port = await freePort();
    const config = withCassandraHost(ks.config, `127.0.0.1:${port}`);
    const starting = startSettler({ config, logger });
    let outcome: 'pending' | 'started' | Error = 'pending';
    starting.then(
      (s) => {
        settler = s;
        outcome = 'started';
      },
      (error: Error) => (outcome = error),
    );
    // Several connection attempts fail in this time; the start neither fails nor completes.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(outcome).toBe('pending');

    const [host, realPort] = ks.config.scylladb.hosts[0]!.split(':');
    await proxy.open(port, { host: host!, port: Number(realPort ?? 9042) });
    settler = await starting;
    expect(outcome).toBe('started');

    const catalog = new MarketCatalog(config);
    const stream = generateStream({ catalog, messages: 1_500, users: 60, seed: 5 });
    await enqueue(queues, toJobs(stream.messages, 50));
    await waitForWatermarks(new WatermarkRepository(ks.client, config.scylladb.keyspace), stream.lastSeqByShard, 40_000);
    const expected = expectedBalances(stream.messages, catalog.feeAccountUserId);
    const checked = await expectBalances(new BalanceRepository(ks.client, config.scylladb.keyspace), expected, [...stream.users, catalog.feeAccountUserId]);
    expect(checked).toBeGreaterThan(0);
  }, 60_000);

  it('still fails at once when the keyspace does not exist', async () => {
    const config = withCassandraHost(ks.config, ks.config.scylladb.hosts[0]!, 'no_such_keyspace_x1');
    const started = Date.now();
    await expect(startSettler({ config, logger })).rejects.toThrow(/no_such_keyspace_x1/i);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
