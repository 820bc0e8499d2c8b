import { describe, expect, it } from 'vitest';
import { FENCE_BASE_US, FENCE_BATCH_STRIDE_US as STRIDE, FENCE_EPOCH_MAX, FENCE_EPOCH_SPAN_US, epochFloorUs, epochOfTimestamp, nextEpoch, nextWriteTimestamp } from './fencing.js';

const wallClockUs = BigInt(Date.now()) * 1000n;

describe('fencing timestamps', () => {
  it('puts every timestamp of a later epoch above every timestamp of an earlier one, and above any wall clock', () => {
    expect(epochFloorUs(1n)).toBeGreaterThan(wallClockUs * 2n);
    const lastOf5 = epochFloorUs(5n) + FENCE_EPOCH_SPAN_US - 1n;
    expect(epochFloorUs(6n)).toBeGreaterThan(lastOf5);
    expect(epochOfTimestamp(lastOf5)).toBe(5n);
    expect(epochOfTimestamp(epochFloorUs(6n))).toBe(6n);
    expect(epochOfTimestamp(wallClockUs)).toBe(0n);
    expect(epochFloorUs(FENCE_EPOCH_MAX) + FENCE_EPOCH_SPAN_US - 1n).toBeLessThan(2n ** 63n);
    expect(() => epochFloorUs(0n)).toThrow('fencing epoch 0 is outside');
  });

  it('issues strictly increasing timestamps within an epoch, above the stored one and above its own earlier ones', () => {
    const floor = epochFloorUs(3n);
    expect(nextWriteTimestamp({ epoch: 3n, storedWriteTs: wallClockUs, lastIssuedTs: undefined })).toEqual({ ok: true, writeTs: floor });
    expect(nextWriteTimestamp({ epoch: 3n, storedWriteTs: floor + 10n, lastIssuedTs: floor + 4n })).toEqual({ ok: true, writeTs: floor + 10n + STRIDE });
    // Room between two batches: a write stamped just above a stored row loses to the next batch.
    expect(STRIDE).toBeGreaterThan(1n);
    // Storage went back (the stored watermark lost our last batches): our own earlier
    // timestamps still count, so a batch that may yet land never ties with the next one.
    expect(nextWriteTimestamp({ epoch: 3n, storedWriteTs: floor + 2n, lastIssuedTs: floor + 9n })).toEqual({ ok: true, writeTs: floor + 9n + STRIDE });
    // A new epoch starts at its floor whatever was issued before.
    expect(nextWriteTimestamp({ epoch: 4n, storedWriteTs: floor + 2n, lastIssuedTs: floor + 9n })).toEqual({ ok: true, writeTs: epochFloorUs(4n) });
  });

  it('says when a later owner has written the shard, and when an epoch is used up', () => {
    expect(nextWriteTimestamp({ epoch: 3n, storedWriteTs: epochFloorUs(4n) + 7n, lastIssuedTs: undefined })).toEqual({ ok: false, reason: 'superseded', storedEpoch: 4n });
    const last = epochFloorUs(3n) + FENCE_EPOCH_SPAN_US - 1n;
    expect(nextWriteTimestamp({ epoch: 3n, storedWriteTs: last, lastIssuedTs: undefined })).toEqual({ ok: false, reason: 'exhausted' });
  });

  it('proposes an epoch above the fence row, the stored batch and the one held', () => {
    expect(nextEpoch(undefined, 0n, undefined)).toBe(1n);
    expect(nextEpoch(7n, wallClockUs, undefined)).toBe(8n);
    // The fence row was lost by a storage that went back, a batch of epoch 9 was not.
    expect(nextEpoch(2n, epochFloorUs(9n) + 5n, undefined)).toBe(10n);
    expect(nextEpoch(2n, 0n, 12n)).toBe(13n);
    expect(FENCE_BASE_US).toBe(2n ** 52n);
  });
});
