import { Redis, type RedisOptions } from 'ioredis';

/**
 * A connection for BullMQ workers and blocking commands: BullMQ requires
 * maxRetriesPerRequest null there, so a command waits for a reconnect instead of failing.
 */
export function createRedisConnection(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
    ...overrides,
  });
}

/**
 * A connection for producers that must notice a Redis outage at once (the ingestor spools to
 * disk then): no offline queue and a bounded number of retries per command.
 */
export function createFailFastRedisConnection(url: string): Redis {
  return createRedisConnection(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
}
