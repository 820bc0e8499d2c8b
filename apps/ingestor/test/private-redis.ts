/**
 * A redis-server of the test's own (on a free port, its files under the keyspace's data folder),
 * for tests that stop, kill or empty it; the config pointed at it, and a client once it answers.
 */
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { TestRedisServer, type TestKeyspace } from '@settlement/testing';
import { freePort, redisClient, waitFor } from './helpers.js';

export interface PrivateRedis {
  readonly server: TestRedisServer;
  readonly config: Readonly<SettlementConfig>;
  readonly redis: Redis;
  /** Disconnects the client and stops the server (SIGTERM). */
  close(): Promise<void>;
}

/** `appendOnly`: fsync every write, so its data survives a restart (default: comes back empty). */
export async function startPrivateRedis(ks: TestKeyspace, options: { appendOnly?: boolean } = {}): Promise<PrivateRedis> {
  const server = new TestRedisServer(await freePort(), { dir: path.join(ks.config.data_dir, 'private-redis'), appendOnly: options.appendOnly });
  const config = { ...ks.config, redis: { ...ks.config.redis, url: server.url } };
  server.start();
  const redis = redisClient(config.redis.url);
  await waitFor('private Redis', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);
  return {
    server,
    config,
    redis,
    close: async () => {
      redis.disconnect();
      await server.stop('SIGTERM');
    },
  };
}
