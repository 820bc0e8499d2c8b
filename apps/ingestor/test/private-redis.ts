/**
 * A test keyspace with a redis-server of the test's own (on a free port, its files under the
 * keyspace's data folder), for tests that stop, kill or empty Redis: the config pointed at it,
 * and a client once it answers.
 */
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { TestRedisServer, createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { freePort, redisClient, waitFor } from './helpers.js';

export interface PrivateRedisBed {
  readonly ks: TestKeyspace;
  readonly server: TestRedisServer;
  /** The keyspace's config with the private Redis. */
  readonly config: Readonly<SettlementConfig>;
  readonly redis: Redis;
  /** Disconnects the client, stops the server (SIGTERM) and drops the keyspace. */
  close(): Promise<void>;
}

/** `appendOnly`: fsync every write, so its data survives a restart (default: comes back empty). */
export async function openPrivateRedisBed(options: { appendOnly?: boolean } = {}): Promise<PrivateRedisBed> {
  const ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: await freePort() } }));
  const server = new TestRedisServer(await freePort(), { dir: path.join(ks.config.data_dir, 'private-redis'), appendOnly: options.appendOnly });
  const config = { ...ks.config, redis: { ...ks.config.redis, url: server.url } };
  server.start();
  const redis = redisClient(config.redis.url);
  await waitFor('private Redis', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);
  return {
    ks,
    server,
    config,
    redis,
    close: async () => {
      redis.disconnect();
      await server.stop('SIGTERM');
      await ks.drop();
    },
  };
}
