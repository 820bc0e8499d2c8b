import { describe, expect, it } from 'vitest';
import { DEFAULT_HISTORY_BUCKET_SEQS, historyBucket } from './history-buckets.js';
import { STATEMENT_BYTES } from './settle-plan.js';

describe('historyBucket', () => {
  it('slices shard sequences into buckets of bucketSeqs', () => {
    expect(historyBucket(0n, 16n)).toBe(0n);
    expect(historyBucket(15n, 16n)).toBe(0n);
    expect(historyBucket(16n, 16n)).toBe(1n);
    expect(historyBucket(1_000n, 16n)).toBe(62n);
    expect(historyBucket(65_535n, DEFAULT_HISTORY_BUCKET_SEQS)).toBe(0n);
    expect(historyBucket(65_536n, DEFAULT_HISTORY_BUCKET_SEQS)).toBe(1n);
  });

  it('keeps 63-bit sequences exact and refuses nonsense', () => {
    const seq = 2n ** 63n - 1n;
    expect(historyBucket(seq, DEFAULT_HISTORY_BUCKET_SEQS)).toBe(seq / 65_536n);
    expect(() => historyBucket(-1n, 16n)).toThrow('shard sequence must not be negative, got -1');
    expect(() => historyBucket(1n, 0n)).toThrow('history bucket width must be at least 1, got 0');
  });

  it('bounds a partition at ~64 MB (rows of ~1 KB as Cassandra 2.1 stores them) and the fee account index at ~2.4 M rows a year at 5,000 trades/s', () => {
    const rowsMax = DEFAULT_HISTORY_BUCKET_SEQS;
    expect(STATEMENT_BYTES.tradeHistory).toBeLessThan(1_024);
    expect(Number(rowsMax) * 1_024).toBeLessThanOrEqual(64 * 1024 * 1024);
    const messagesPerYear = 5_000n * 86_400n * 365n;
    expect(messagesPerYear).toBe(157_680_000_000n);
    expect(messagesPerYear / DEFAULT_HISTORY_BUCKET_SEQS).toBe(2_406_005n);
  });
});
