/**
 * A bad frame received again is stored once (issue 18.5), real ingestor process, Redis and
 * Cassandra: the engine re-sends it, or a restarted ingestor receives it again, and the
 * dead_letters table keeps one row per distinct frame (it kept one per receipt: a fault run
 * stored 317 rows for 283 distinct frames).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Push } from 'zeromq';
import { DeadLetterRepository } from '@settlement/scylla';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { deletePrefix, freePort, redisClient, startIngestorProcess, waitFor, type IngestorProcess } from './helpers.js';

let ks: TestKeyspace;
let redis: Redis;

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ zmq: { settlement_port: await freePort() } }));
  redis = redisClient(ks.config.redis.url);
}, 60_000);

afterAll(async () => {
  if (ks !== undefined) await deletePrefix(redis, ks.config.redis.prefix);
  redis?.disconnect();
  await ks?.drop();
});

async function sendFrames(endpoint: string, frames: readonly string[]): Promise<void> {
  const push = new Push({ linger: 5_000 });
  push.connect(endpoint);
  for (const frame of frames) await push.send(frame);
  push.close();
}

const rejected = (ingestor: IngestorProcess) => ingestor.logged('message rejected; dead-lettered').length;

describe('ingestor dead-letter identity', () => {
  it('stores a bad frame received twice, and again after a restart, as one row', { timeout: 90_000 }, async () => {
    const config = ks.config;
    const endpoint = `tcp://127.0.0.1:${config.zmq.settlement_port}`;
    const negative = '{"user_id":7,"sequence_id":0,"event_type":"DEPOSIT","amount":-1,"currency":1,"related_id":0,"created_at":1}';
    const notJson = 'not json at all';

    const first = startIngestorProcess(config, 'ingestor-dl-identity-1');
    await first.ready();
    await sendFrames(endpoint, [negative, notJson, negative]);
    await waitFor('three rejections', () => rejected(first) === 3, 20_000);
    // A graceful stop writes every pending dead letter before it exits.
    expect((await first.stop()).code).toBe(0);

    const second = startIngestorProcess(config, 'ingestor-dl-identity-2');
    await second.ready();
    await sendFrames(endpoint, [negative]);
    await waitFor('the rejection after the restart', () => rejected(second) === 1, 20_000);
    expect((await second.stop()).code).toBe(0);

    const rows = async (shard: string) =>
      (await ks.client.execute('SELECT raw FROM dead_letters WHERE shard = ?', [shard], { prepare: true })).rows.map((r) => r['raw'] as string);
    expect(await rows('funding')).toEqual([negative]);
    expect(await rows('unrouted')).toEqual([notJson]);
    // The list (settle dead-letters list, the reconciler's count) says the same.
    const repo = new DeadLetterRepository(ks.client, config.scylladb.keyspace);
    const listed = [...(await repo.list('funding')), ...(await repo.list('unrouted'))];
    expect(listed.map((l) => [l.shard, l.field, l.raw])).toEqual([['funding', 'amount', negative], ['unrouted', '(root)', notJson]]);
    for (const letter of listed) expect(Date.now() - letter.createdAt!.getTime()).toBeLessThan(90_000);
  });
});
