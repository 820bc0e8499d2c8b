import { describe, expect, it } from 'vitest';
import { HISTORY_BUCKET_MS, HISTORY_PERIOD_MS, bucketRange, historyBucket, historyPeriodOfBucket } from './history-buckets.js';

describe('history buckets', () => {
  it('slices time into 10 s buckets and days of buckets', () => {
    expect(historyBucket(0n)).toBe(0n);
    expect(historyBucket(9_999n)).toBe(0n);
    expect(historyBucket(10_000n)).toBe(1n);
    expect(historyPeriodOfBucket(historyBucket(HISTORY_PERIOD_MS - 1n))).toBe(0n);
    expect(historyPeriodOfBucket(historyBucket(HISTORY_PERIOD_MS))).toBe(1n);
    expect(HISTORY_PERIOD_MS % HISTORY_BUCKET_MS).toBe(0n);
  });

  it('keeps u64 times exact', () => {
    const t = 2n ** 64n - 1n;
    expect(historyBucket(t)).toBe(t / 10_000n);
    expect(() => historyBucket(-1n)).toThrow('history time must not be negative, got -1');
  });

  it('bounds the fee account: 5,000 rows/s fill a bucket with 50,000 rows', () => {
    const perSecond = 5_000n;
    expect((perSecond * HISTORY_BUCKET_MS) / 1000n).toBe(50_000n);
    expect(bucketRange(10_000n, 29_999n)).toEqual({ first: 1n, last: 2n });
    expect(bucketRange(undefined, 5n)).toEqual({ first: undefined, last: 0n });
  });
});
