/**
 * Redis dropping the ingestor's connection while it loads its position at start-up (chaos run,
 * 5 Dec, seed 1811: a Redis restart just as a killed ingestor came back made its start-up fail,
 * exit 1). A private redis-server is killed as the ingestor reads its position and started again
 * (empty): start-up loads the position again once Redis is back, and comes up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementConfig } from '@settlement/config';
import type { TestKeyspace, TestRedisServer } from '@settlement/testing';
import { startIngestorProcess, stateKeyOf } from './helpers.js';
import { openPrivateRedisBed, type PrivateRedisBed } from './private-redis.js';

let ks: TestKeyspace;
let config: Readonly<SettlementConfig>;
let redisServer: TestRedisServer;
let bed: PrivateRedisBed | undefined;
let redis: Redis;

beforeAll(async () => {
  bed = await openPrivateRedisBed();
  ({ ks, server: redisServer, config, redis } = bed);
});

afterAll(async () => {
  await bed?.close();
});

describe('ingestor start-up while Redis drops its connection', () => {
  it('loads the position again and comes up, instead of exiting', { timeout: 60_000 }, async () => {
    // A settled watermark above the (empty) position in Redis: start-up raises the position to it,
    // a write to Redis after the read.
    await ks.client.execute('INSERT INTO shard_watermarks (shard, last_seq, write_ts, batch_count, last_job_id, updated_at) VALUES (?, ?, ?, ?, ?, ?)', ['btc_usdt', 100n, 1n, 1n, 'btc_usdt-1-100', new Date()], { prepare: true });
    const ingestor = startIngestorProcess(config, 'ingestor-redis-drop');
    try {
      // The moment it reads its position (HGETALL of the state hash), Redis is killed, and started
      // again 1.5 s later: the position raised to the watermark cannot be written meanwhile.
      const monitor = await redis.monitor();
      await new Promise<void>((resolve) =>
        monitor.on('monitor', (_time: string, args: string[]) => {
          if (args[0]?.toLowerCase() === 'hgetall' && args[1] === stateKeyOf(config)) resolve();
        }),
      );
      await redisServer.stop('SIGKILL');
      monitor.disconnect();
      await sleep(1_500);
      redisServer.start();
      await ingestor.ready(30_000);

      expect(ingestor.logged('Redis went away during start-up; loading the position again once it is back').length).toBeGreaterThan(0);
      expect(ingestor.logged('start-up failed')).toEqual([]);
    } finally {
      expect((await ingestor.stop()).code).toBe(0);
    }
  });
});
