import { describe, expect, it } from 'vitest';
import { decodeHaltedShardRange, encodeHaltedShardRange } from './halted-shards.js';

describe('halted-shard ranges (settler → ingestor)', () => {
  it('round-trips a range with u64 sequences exactly', () => {
    const range = { afterSeq: 18_446_744_073_709_551_000n, throughSeq: 18_446_744_073_709_551_615n, haltedAtMs: 1_796_000_000_000 };
    expect(decodeHaltedShardRange(encodeHaltedShardRange(range))).toEqual(range);
    // The watermark's own batch, to be re-sent although the watermark reached it.
    const reapply = { afterSeq: 20n, throughSeq: 30n, haltedAtMs: 1, reapply: true };
    expect(decodeHaltedShardRange(encodeHaltedShardRange(reapply))).toEqual(reapply);
    expect(encodeHaltedShardRange({ ...reapply, reapply: false })).not.toContain('reapply');
  });

  it('names the field of a bad value', () => {
    expect(() => decodeHaltedShardRange('{"afterSeq":"5","throughSeq":"5","haltedAtMs":1}')).toThrow('Invalid halted-shard range: throughSeq: afterSeq must be below throughSeq');
    expect(() => decodeHaltedShardRange('{"afterSeq":5,"throughSeq":"9","haltedAtMs":1}')).toThrow('Invalid halted-shard range: afterSeq:');
    expect(() => decodeHaltedShardRange('nope')).toThrow('Invalid halted-shard range: (root): not JSON');
  });
});
