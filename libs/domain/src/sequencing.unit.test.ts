import { describe, expect, it } from 'vitest';
import { SKIPPED_GAPS_REMEMBERED_MAX, SequenceTracker } from './sequencing.js';

function offerAll(tracker: SequenceTracker<bigint>, seqs: readonly number[], nowMs = 0): { out: bigint[]; outcomes: string[] } {
  const out: bigint[] = [];
  const outcomes = seqs.map((s) => tracker.offer(BigInt(s), BigInt(s), nowMs, out));
  return { out, outcomes };
}

describe('SequenceTracker', () => {
  it('releases an in-order stream at once', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const { out, outcomes } = offerAll(tracker, [1, 2, 3]);
    expect(out).toEqual([1n, 2n, 3n]);
    expect(outcomes).toEqual(['released', 'released', 'released']);
    expect(tracker.lastSeq).toBe(3n);
    expect(tracker.hole()).toBeUndefined();
  });

  it('starts after the persisted position and calls anything at or below it a duplicate', () => {
    const tracker = new SequenceTracker<bigint>('s', 10n, 20);
    const { out, outcomes } = offerAll(tracker, [9, 10, 11, 11]);
    expect(outcomes).toEqual(['duplicate', 'duplicate', 'released', 'duplicate']);
    expect(out).toEqual([11n]);
  });

  it('holds a message that arrives ahead of a hole and releases both in order when the hole fills', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const out: bigint[] = [];
    expect(tracker.offer(1n, 1n, 0, out)).toBe('released');
    expect(tracker.offer(3n, 3n, 5, out)).toBe('held');
    expect(tracker.offer(4n, 4n, 6, out)).toBe('held');
    expect(tracker.offer(3n, 3n, 7, out)).toBe('duplicate');
    expect(tracker.hole()).toEqual({ fromSeq: 2n, toSeq: 2n, openedAtMs: 5, deadlineMs: 25 });
    expect(tracker.heldCount).toBe(2);
    expect(tracker.highestSeq).toBe(4n);
    expect(tracker.offer(2n, 2n, 10, out)).toBe('released');
    expect(out).toEqual([1n, 2n, 3n, 4n]);
    expect(tracker.hole()).toBeUndefined();
    expect(tracker.heldCount).toBe(0);
  });

  it('sorts items that arrive in any order', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const { out } = offerAll(tracker, [5, 3, 4, 2, 1, 7, 6]);
    expect(out).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
  });

  it('reports the hole only after the reorder window', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const out: bigint[] = [];
    tracker.offer(2n, 2n, 100, out);
    expect(tracker.expiredHole(119)).toBeUndefined();
    expect(tracker.expiredHole(120)).toMatchObject({ fromSeq: 1n, toSeq: 1n });
  });

  it('keeps the window of a partly filled hole', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const out: bigint[] = [];
    tracker.offer(4n, 4n, 100, out);
    tracker.offer(1n, 1n, 110, out);
    expect(tracker.hole()).toMatchObject({ fromSeq: 2n, toSeq: 3n, openedAtMs: 100 });
  });

  it('skips an expired hole, releases what waited behind it and returns the gap', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const { out } = offerAll(tracker, [1, 4, 5, 8]);
    expect(out).toEqual([1n]);
    const gap = tracker.skipHole(50, out);
    expect(gap).toEqual({ fromSeq: 2n, toSeq: 3n });
    expect(out).toEqual([1n, 4n, 5n]);
    // The next hole gets a fresh window.
    expect(tracker.hole()).toEqual({ fromSeq: 6n, toSeq: 7n, openedAtMs: 50, deadlineMs: 70 });
    // A late arrival of a skipped sequence is late (the caller settles or dead-letters it),
    // never a silent duplicate; a second copy of it is.
    expect(tracker.offer(2n, 2n, 51, out)).toBe('late');
    expect(tracker.offer(2n, 2n, 52, out)).toBe('duplicate');
  });

  it('skipAll releases everything held and lists every gap', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const { out } = offerAll(tracker, [3, 6, 7, 10]);
    expect(tracker.skipAll(0, out)).toEqual([
      { fromSeq: 1n, toSeq: 2n },
      { fromSeq: 4n, toSeq: 5n },
      { fromSeq: 8n, toSeq: 9n },
    ]);
    expect(out).toEqual([3n, 6n, 7n, 10n]);
    expect(tracker.lastSeq).toBe(10n);
    expect(tracker.skipHole(0, out)).toBeUndefined();
  });

  it('keeps sequences above 2^53 exact', () => {
    const base = 2n ** 60n;
    const tracker = new SequenceTracker<bigint>('s', base, 20);
    const out: bigint[] = [];
    expect(tracker.offer(base + 2n, 2n, 0, out)).toBe('held');
    expect(tracker.offer(base + 1n, 1n, 0, out)).toBe('released');
    expect(out).toEqual([1n, 2n]);
    expect(tracker.lastSeq).toBe(base + 2n);
  });

  it('rejects a negative start and a negative window', () => {
    expect(() => new SequenceTracker('s', -1n, 20)).toThrow(/must not be negative/);
    expect(() => new SequenceTracker('s', 0n, -1)).toThrow(/reorderWindowMs/);
  });
});

describe('SequenceTracker: a message that arrives after its gap was skipped', () => {
  it('is late (not a duplicate) the first time, and a duplicate after that', () => {
    const tracker = new SequenceTracker<bigint>('global', 0n, 20);
    const out: bigint[] = [];
    expect(tracker.offer(1n, 1n, 0, out)).toBe('released');
    expect(tracker.offer(4n, 4n, 0, out)).toBe('held');
    expect(tracker.skipHole(100, out)).toEqual({ fromSeq: 2n, toSeq: 3n });
    expect(out).toEqual([1n, 4n]);
    expect(tracker.offer(2n, 2n, 200, out)).toBe('late');
    expect(tracker.skippedGapOf(2n)).toEqual({ fromSeq: 2n, toSeq: 3n });
    expect(tracker.offer(2n, 2n, 201, out)).toBe('duplicate');
    expect(tracker.offer(3n, 3n, 202, out)).toBe('late');
    // Released before the gap, or after it: a plain duplicate.
    expect(tracker.offer(1n, 1n, 203, out)).toBe('duplicate');
    expect(tracker.offer(4n, 4n, 204, out)).toBe('duplicate');
    // A late message is never appended: the caller decides whether it can still apply.
    expect(out).toEqual([1n, 4n]);
  });

  it('remembers gaps skipped at shutdown too, and forgets the oldest beyond its bound', () => {
    const tracker = new SequenceTracker<bigint>('s', 0n, 20);
    const out: bigint[] = [];
    for (let i = 0; i <= SKIPPED_GAPS_REMEMBERED_MAX; i++) tracker.offer(BigInt(2 * i + 2), 0n, 0, out);
    expect(tracker.skipAll(0, out)).toHaveLength(SKIPPED_GAPS_REMEMBERED_MAX + 1);
    // Gap 1-1 was the first of 1 025: forgotten; gap 3-3 is still known.
    expect(tracker.offer(1n, 0n, 1, out)).toBe('duplicate');
    expect(tracker.offer(3n, 0n, 1, out)).toBe('late');
  });
});
