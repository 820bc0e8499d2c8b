import { describe, expect, it } from 'vitest';
import { balanceRowKey, type BalanceRow } from '@settlement/domain';
import { BalanceCache } from './balance-cache.js';

const row = (userId: bigint, version = 1n): BalanceRow => ({ userId, assetId: 1, available: 1n, locked: 0n, version });
const keyOf = (r: BalanceRow) => balanceRowKey(r.userId, r.assetId);

describe('BalanceCache', () => {
  it('is current only for the stored state it was built on and for jobs that continue from it', () => {
    const cache = new BalanceCache(10);
    expect(cache.isCurrent(0n, { lastSeq: 0n, writeTs: 0n, exists: false })).toBe(false);
    cache.reset({ lastSeq: 0n, writeTs: 0n, exists: false });
    expect(cache.complete).toBe(true);
    cache.commit([row(1n)], keyOf, { lastSeq: 50n, writeTs: 1000n, exists: true });
    expect(cache.isCurrent(50n, { lastSeq: 50n, writeTs: 1000n, exists: true })).toBe(true);
    // Another writer moved the shard on (or corrected a row: same seq, newer timestamp).
    expect(cache.isCurrent(50n, { lastSeq: 80n, writeTs: 2000n, exists: true })).toBe(false);
    expect(cache.isCurrent(50n, { lastSeq: 50n, writeTs: 1001n, exists: true })).toBe(false);
    // A redelivered older job does not continue from the cache.
    expect(cache.isCurrent(20n, { lastSeq: 50n, writeTs: 1000n, exists: true })).toBe(false);
    expect(cache.isCurrent(undefined, { lastSeq: 50n, writeTs: 1000n, exists: true })).toBe(true);
  });

  it('is complete only while the shard had no rows and nothing was evicted', () => {
    const cache = new BalanceCache(2);
    cache.reset({ lastSeq: 10n, writeTs: 5n, exists: true });
    expect(cache.complete).toBe(false);
    cache.reset({ lastSeq: 0n, writeTs: 0n, exists: false });
    cache.commit([row(1n), row(2n)], keyOf, { lastSeq: 1n, writeTs: 1n, exists: true });
    expect(cache.complete).toBe(true);
    cache.commit([row(1n, 2n), row(3n)], keyOf, { lastSeq: 2n, writeTs: 2n, exists: true });
    expect(cache.complete).toBe(false);
    expect(cache.size).toBe(2);
    // The first cached goes first.
    expect(cache.has('1/1')).toBe(false);
    expect(cache.get('2/1')?.version).toBe(1n);
    expect(cache.get('3/1')?.version).toBe(1n);
  });

  it('keeps loaded rows without replacing newer ones', () => {
    const cache = new BalanceCache(10);
    cache.reset({ lastSeq: 5n, writeTs: 5n, exists: true });
    cache.commit([row(1n, 5n)], keyOf, { lastSeq: 5n, writeTs: 6n, exists: true });
    cache.putLoaded([['1/1', row(1n, 3n)], ['2/1', row(2n, 4n)]]);
    expect(cache.get('1/1')?.version).toBe(5n);
    expect(cache.get('2/1')?.version).toBe(4n);
    cache.invalidate();
    expect(cache.size).toBe(0);
    expect(cache.lastSeq).toBeUndefined();
  });

  it('is made complete by a scan only if nothing reset it since the scan started, keeping the rows written meanwhile', () => {
    const cache = new BalanceCache(10);
    cache.reset({ lastSeq: 10n, writeTs: 5n, exists: true });
    const started = cache.generation;
    // Written by this process while the scan ran: newer than what the scan read.
    cache.commit([row(1n, 7n)], keyOf, { lastSeq: 11n, writeTs: 6n, exists: true });
    expect(cache.completeWith([[keyOf(row(1n)), row(1n, 3n)], [keyOf(row(2n)), row(2n, 4n)]], started)).toBe(true);
    expect(cache.complete).toBe(true);
    expect(cache.get('1/1')?.version).toBe(7n);
    expect(cache.get('2/1')?.version).toBe(4n);

    // Reset (another writer moved the shard on) while a second scan ran: its rows are not used.
    cache.invalidate();
    cache.reset({ lastSeq: 20n, writeTs: 9n, exists: true });
    const second = cache.generation;
    cache.reset({ lastSeq: 30n, writeTs: 12n, exists: true });
    expect(cache.completeWith([[keyOf(row(3n)), row(3n)]], second)).toBe(false);
    expect(cache.complete).toBe(false);
    expect(cache.has('3/1')).toBe(false);
  });

  it('is not complete after a scan that found more rows than it may hold', () => {
    const cache = new BalanceCache(1);
    cache.reset({ lastSeq: 10n, writeTs: 5n, exists: true });
    expect(cache.completeWith([[keyOf(row(1n)), row(1n)], [keyOf(row(2n)), row(2n)]], cache.generation)).toBe(false);
    expect(cache.complete).toBe(false);
  });
});
