/**
 * A reconciler started while Cassandra cannot be reached waits for it instead of exiting (under
 * a supervisor it would otherwise crash-loop through a Cassandra restart), then starts: its
 * heartbeat appears. Cassandra "comes back" as a TCP proxy to the test stack's Cassandra opened
 * on the port the reconciler was given. A keyspace that does not exist still fails at once.
 */
import net from 'node:net';
import pino from 'pino';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { parseConfig, type SettlementConfig } from '@settlement/config';
import { RECONCILIATION_QUEUE } from '@settlement/domain';
import { createRedisConnection, heartbeatPattern } from '@settlement/runtime';
import { startReconciler, type RunningReconciler } from '../src/reconciler.js';

let ks: TestKeyspace;
let redis: Redis;
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
let reconciler: RunningReconciler | undefined;
const logger = pino({ level: 'silent' });

/** A port nobody listens on (yet). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Forwards 127.0.0.1:port to the real Cassandra: from now on the reconciler's host answers. */
async function openProxy(port: number, target: { host: string; port: number }): Promise<void> {
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
}

/** The test config pointed at another Cassandra host:port (and optionally another keyspace). */
function withCassandra(config: Readonly<SettlementConfig>, host: string, keyspace = config.scylladb.keyspace): Readonly<SettlementConfig> {
  const raw = JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  raw['scylladb'] = { ...raw['scylladb'], hosts: [host], keyspace };
  return parseConfig(raw);
}

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ reconciliation: { enabled: true, interval_seconds: 3600, heartbeat_interval_ms: 200 } }));
  redis = createRedisConnection(ks.config.redis.url);
});

afterAll(async () => {
  await reconciler?.close();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  const queue = new Queue(RECONCILIATION_QUEUE, { connection: redis, prefix: ks.config.redis.prefix });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await redis?.quit();
  await ks?.drop();
});

describe('reconciler start-up while Cassandra is unreachable', () => {
  it('waits for Cassandra, then starts', async () => {
    const port = await freePort();
    const config = withCassandra(ks.config, `127.0.0.1:${port}`);
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
    await openProxy(port, { host: host!, port: Number(realPort ?? 9042) });
    reconciler = await starting;
    expect(outcome).toBe('started');
    // The first heartbeat is written just after the start returns.
    for (let i = 0; i < 50 && (await redis.keys(heartbeatPattern(config.redis.prefix))).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await redis.keys(heartbeatPattern(config.redis.prefix))).toHaveLength(1);
  }, 60_000);

  it('still fails at once when the keyspace does not exist', async () => {
    const config = withCassandra(ks.config, ks.config.scylladb.hosts[0]!, 'no_such_keyspace_x2');
    const started = Date.now();
    await expect(startReconciler({ config, logger })).rejects.toThrow(/no_such_keyspace_x2/i);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
