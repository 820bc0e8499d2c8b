/**
 * Sequencing of one ordered stream (a shard, or the engine's one global trade counter): finds
 * duplicates, holds messages that arrive ahead of a hole for a short reorder window, and reports
 * holes that stay open so the caller can ask the engine's replay endpoint or record a gap.
 * Pure: time is passed in, nothing is awaited.
 */

/** A run of missing sequences, both ends included. */
export interface SequenceRange {
  readonly fromSeq: bigint;
  readonly toSeq: bigint;
}

export interface SequenceHole extends SequenceRange {
  /** When the stream started waiting for this hole, ms (caller's clock). */
  readonly openedAtMs: number;
  /** When the reorder window of this hole ends, ms. */
  readonly deadlineMs: number;
}

/**
 * released: the item (and any held items it unblocked) was appended to `out`, in order.
 * late: the item's sequence lies in a gap this tracker skipped (recorded) and had not arrived
 * before; it is not appended: the caller settles it if its shard can still take it in order,
 * else dead-letters it (see skippedGapOf).
 */
export type OfferOutcome = 'released' | 'held' | 'duplicate' | 'late';

/**
 * Skipped gaps remembered per stream to tell a late message from a duplicate. Older ones are
 * forgotten: a message that arrives after this many later gaps counts as a duplicate.
 */
export const SKIPPED_GAPS_REMEMBERED_MAX = 1024;
/** Late arrivals remembered per stream (so a second copy of one is a duplicate). */
export const LATE_ARRIVALS_REMEMBERED_MAX = 65_536;

interface Held<T> {
  readonly seq: bigint;
  readonly item: T;
}

/**
 * One stream's position. Everything at or below `lastSeq` has been released (or skipped as a
 * recorded gap); items above it wait in a sorted buffer until the hole before them closes.
 */
export class SequenceTracker<T> {
  private last: bigint;
  /** Sorted by seq, all above `last + 1`. Usually tiny: a reordered neighbour or two. */
  private readonly held: Held<T>[] = [];
  private holeOpenedAtMs: number | undefined;
  /** Gaps skipped by skipHole, oldest first, at most SKIPPED_GAPS_REMEMBERED_MAX. */
  private readonly skipped: SequenceRange[] = [];
  /** Sequences of skipped gaps that arrived late, at most LATE_ARRIVALS_REMEMBERED_MAX. */
  private readonly arrivedLate = new Set<bigint>();

  /**
   * @param stream name used in logs and gap records
   * @param lastSeq last sequence already released (from persisted state; 0 for a new stream)
   * @param reorderWindowMs how long a hole may stay open before `expiredHole` reports it
   */
  constructor(
    readonly stream: string,
    lastSeq: bigint,
    private readonly reorderWindowMs: number,
  ) {
    if (lastSeq < 0n) throw new RangeError(`lastSeq of stream ${stream} must not be negative, got ${lastSeq}`);
    if (!Number.isFinite(reorderWindowMs) || reorderWindowMs < 0) throw new RangeError(`reorderWindowMs must be >= 0, got ${reorderWindowMs}`);
    this.last = lastSeq;
  }

  /** Last sequence released or skipped. */
  get lastSeq(): bigint {
    return this.last;
  }

  /** Highest sequence seen (released or held). */
  get highestSeq(): bigint {
    const top = this.held[this.held.length - 1];
    return top === undefined ? this.last : top.seq;
  }

  get heldCount(): number {
    return this.held.length;
  }

  /**
   * Offers one item. Released items (this one and any held ones it unblocks) are pushed onto
   * `out` in sequence order. A sequence at or below `lastSeq`, or already held, is a duplicate,
   * unless it lies in a gap skipped earlier and arrives there for the first time: then it is late.
   */
  offer(seq: bigint, item: T, nowMs: number, out: T[]): OfferOutcome {
    const next = this.last + 1n;
    if (seq < next) {
      if (this.arrivedLate.has(seq) || this.skippedGapOf(seq) === undefined) return 'duplicate';
      if (this.arrivedLate.size >= LATE_ARRIVALS_REMEMBERED_MAX) this.arrivedLate.delete(this.arrivedLate.values().next().value!);
      this.arrivedLate.add(seq);
      return 'late';
    }
    if (seq === next) {
      out.push(item);
      this.last = seq;
      this.releaseContiguous(out);
      return 'released';
    }
    const at = this.insertionPoint(seq);
    if (at < this.held.length && this.held[at]!.seq === seq) return 'duplicate';
    this.held.splice(at, 0, { seq, item });
    this.holeOpenedAtMs ??= nowMs;
    return 'held';
  }

  /** The skipped (recorded) gap that contains `seq`, if it is still remembered. */
  skippedGapOf(seq: bigint): SequenceRange | undefined {
    // Newest first: a late message nearly always belongs to a recent gap.
    for (let i = this.skipped.length - 1; i >= 0; i--) {
      const gap = this.skipped[i]!;
      if (gap.fromSeq <= seq && seq <= gap.toSeq) return gap;
    }
    return undefined;
  }

  /** The open hole before the first held item, if any. */
  hole(): SequenceHole | undefined {
    const first = this.held[0];
    if (first === undefined || this.holeOpenedAtMs === undefined) return undefined;
    return {
      fromSeq: this.last + 1n,
      toSeq: first.seq - 1n,
      openedAtMs: this.holeOpenedAtMs,
      deadlineMs: this.holeOpenedAtMs + this.reorderWindowMs,
    };
  }

  /** When the reorder window of the open hole ends, ms; undefined without a hole. */
  get holeDeadlineMs(): number | undefined {
    return this.held.length === 0 || this.holeOpenedAtMs === undefined ? undefined : this.holeOpenedAtMs + this.reorderWindowMs;
  }

  /** The hole, once its reorder window is over. */
  expiredHole(nowMs: number): SequenceHole | undefined {
    const hole = this.hole();
    return hole !== undefined && nowMs >= hole.deadlineMs ? hole : undefined;
  }

  /**
   * Gives up on the current hole: moves past it and releases the held items up to the next hole
   * onto `out`. Returns the skipped range, which the caller records as a gap. The next hole (if
   * any) gets a fresh reorder window from `nowMs`.
   */
  skipHole(nowMs: number, out: T[]): SequenceRange | undefined {
    const first = this.held[0];
    if (first === undefined) return undefined;
    const gap: SequenceRange = { fromSeq: this.last + 1n, toSeq: first.seq - 1n };
    if (this.skipped.length >= SKIPPED_GAPS_REMEMBERED_MAX) this.skipped.shift();
    this.skipped.push(gap);
    this.last = first.seq - 1n;
    this.releaseContiguous(out);
    if (this.held.length > 0) this.holeOpenedAtMs = nowMs;
    return gap;
  }

  /** Skips every hole (shutdown): returns the gaps, releases all held items onto `out`. */
  skipAll(nowMs: number, out: T[]): SequenceRange[] {
    const gaps: SequenceRange[] = [];
    for (let gap = this.skipHole(nowMs, out); gap !== undefined; gap = this.skipHole(nowMs, out)) gaps.push(gap);
    return gaps;
  }

  private releaseContiguous(out: T[]): void {
    let n = 0;
    while (n < this.held.length && this.held[n]!.seq === this.last + 1n) {
      out.push(this.held[n]!.item);
      this.last = this.held[n]!.seq;
      n += 1;
    }
    if (n > 0) this.held.splice(0, n);
    // A partly filled hole keeps its original window: its remaining sequences are as late as before.
    if (this.held.length === 0) this.holeOpenedAtMs = undefined;
  }

  private insertionPoint(seq: bigint): number {
    let lo = 0;
    let hi = this.held.length;
    // Reordered items nearly always land at the end: check that first.
    if (hi > 0 && this.held[hi - 1]!.seq < seq) return hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.held[mid]!.seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
