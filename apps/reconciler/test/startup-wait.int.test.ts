/**
 * A reconciler started while Cassandra cannot be reached waits for it instead of exiting (under
 * a supervisor it would otherwise crash-loop through a Cassandra restart), then starts: its
 * heartbeat appears. Cassandra "comes back" as a TCP proxy to the test stack's Cassandra opened
 * on the port the reconciler was given. A keyspace that does not exist still fails at once.
 */
import pino from 'pino';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, createTestKeyspace, freePort, testConfig, withCassandraHost, type TestKeyspace } from '@settlement/testing';
import { RECONCILIATION_QUEUE } from '@settlement/domain';
import { heartbeatPattern } from '@settlement/domain';
import { createRedisConnection } from '@settlement/runtime';
import { startReconciler, type RunningReconciler } from '../src/reconciler.js';

let ks: TestKeyspace;
let redis: Redis;
const proxy = new TcpProxy();
let reconciler: RunningReconciler | undefined;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ reconciliation: { enabled: true, interval_seconds: 3600, heartbeat_interval_ms: 200 } }));
  redis = createRedisConnection(ks.config.redis.url);
});

afterAll(async () => {
  await reconciler?.close();
  await proxy.close();
  const queue = new Queue(RECONCILIATION_QUEUE, { connection: redis, prefix: ks.config.redis.prefix });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await redis?.quit();
  await ks?.drop();
});

describe('reconciler start-up while Cassandra is unreachable', () => {
  it('waits for Cassandra, then starts', async () => {
    const port = await freePort();
    const config = withCassandraHost(ks.config, `127.0.0.1:${port}`);
    const starting = startReconciler({ config, logger });
    let outcome: 'pending' | 'started' | Error = 'pending';
    starting.then(
      (r) => {
        reconciler = r;
        outcome = 'started';
      },
      (error: Error) => (outcome = error),
    );
    // Several connection attempts fail in this time; the start neither fails nor completes.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(outcome).toBe('pending');
    expect(await redis.keys(heartbeatPattern(config.redis.prefix))).toEqual([]);

    const [host, realPort] = ks.config.scylladb.hosts[0]!.split(':');
    await proxy.open(port, { host: host!, port: Number(realPort ?? 9042) });
    reconciler = await starting;
    expect(outcome).toBe('started');
    // The first heartbeat is written just after the start returns.
    for (let i = 0; i < 50 && (await redis.keys(heartbeatPattern(config.redis.prefix))).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await redis.keys(heartbeatPattern(config.redis.prefix))).toHaveLength(1);
  }, 60_000);

  it('still fails at once when the keyspace does not exist', async () => {
    const config = withCassandraHost(ks.config, ks.config.scylladb.hosts[0]!, 'no_such_keyspace_x2');
    const started = Date.now();
    await expect(startReconciler({ config, logger })).rejects.toThrow(/no_such_keyspace_x2/i);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
