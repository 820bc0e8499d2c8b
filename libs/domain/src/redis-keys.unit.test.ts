import { describe, expect, it } from 'vitest';
import * as keys from './redis-keys.js';

// The keys are a contract with Redis data already written by running processes: a change here
// strands it, so each one is pinned.
describe('Redis keys', () => {
  it('are the ones every process has always used', () => {
    const p = '{settlement}';
    expect(keys.ingestPositionKey(p)).toBe('{settlement}:ingest:last-enqueued');
    expect(keys.haltedShardsKey(p)).toBe('{settlement}:settle:halted');
    expect(keys.settlerMembersKey(p)).toBe('{settlement}:settle:members');
    expect(keys.settlerWantingKey(p)).toBe('{settlement}:settle:wanting');
    expect(keys.shardLeaseKey(p, 'btc_usdt')).toBe('{settlement}:settle:lease:btc_usdt');
    expect(keys.shardWriterKey(p, 'btc_usdt')).toBe('{settlement}:settle:writer:btc_usdt');
    expect(keys.jobsDoneChannel(p)).toBe('{settlement}:settle:jobs-done');
    expect(keys.shardEpochKey(p, 'btc_usdt')).toBe('{settlement}:settle:epoch:btc_usdt');
    expect(keys.changedUsersKey(p, 499_000)).toBe('{settlement}:reconcile:changed:499000');
    expect(keys.heartbeatKey(p, 'settler', 'ab12cd34')).toBe('{settlement}:heartbeat:settler:ab12cd34');
    expect(keys.heartbeatPattern(p)).toBe('{settlement}:heartbeat:*');
    expect(keys.heartbeatPattern(p, 'ingestor')).toBe('{settlement}:heartbeat:ingestor:*');
    expect(keys.overviewSamplesKey(p, 'funding')).toBe('{settlement}:overview:samples:funding');
  });
});
