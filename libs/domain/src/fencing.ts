/**
 * Write timestamps that order the writers of a shard without trusting any clock.
 *
 * Every cell a settler writes carries `USING TIMESTAMP t`, and Cassandra keeps, cell by cell, the
 * value with the highest t (equal t: the larger value, which is no order at all). A settler that
 * lost its shard — its lock expired while it was paused, or its host's clock runs behind — must
 * never win over the settler that took the shard after it. So t does not come from a clock:
 *
 *   t = FENCE_BASE_US + epoch × FENCE_EPOCH_SPAN_US + n
 *
 * where `epoch` is the shard's fencing epoch, taken (strictly increasing, by a lightweight
 * transaction on the shard's fence row) by each settler when it takes the shard over, and n
 * advances by FENCE_BATCH_STRIDE_US per batch of that owner. Every timestamp of a later owner is above every timestamp of an
 * earlier one, whatever the hosts' clocks say and however late the earlier one's batch lands.
 *
 * FENCE_BASE_US (2^52 µs, the year 2112 read as a wall clock) lies above every wall-clock
 * timestamp, so fenced writes also win over rows written before fencing existed.
 */
import { DomainError } from './domain-error.js';

export const FENCE_BASE_US = 2n ** 52n;
/** Timestamps one owner can issue before it must take a new epoch (~1.1 × 10^12 batches). */
export const FENCE_EPOCH_SPAN_US = 2n ** 40n;
/**
 * Step between two batches of one owner. The room between them lets a write made out of band
 * (an operator's repair, a test's corruption) be stamped just above a row's own write and still
 * lose to the settler's next batch, rather than tie with it (ties are broken by value).
 */
export const FENCE_BATCH_STRIDE_US = 16n;
/** Highest usable epoch: its span still ends below 2^63. */
export const FENCE_EPOCH_MAX = (2n ** 63n - 1n - FENCE_BASE_US) / FENCE_EPOCH_SPAN_US - 1n;

/** First timestamp of an epoch's span. */
export function epochFloorUs(epoch: bigint): bigint {
  if (epoch < 1n || epoch > FENCE_EPOCH_MAX) throw new DomainError('INVALID_EPOCH', `fencing epoch ${epoch} is outside 1..${FENCE_EPOCH_MAX}`, 'epoch');
  return FENCE_BASE_US + epoch * FENCE_EPOCH_SPAN_US;
}

/** The epoch a stored write timestamp belongs to; 0 for a wall-clock timestamp written before fencing. */
export function epochOfTimestamp(writeTs: bigint): bigint {
  return writeTs < FENCE_BASE_US ? 0n : (writeTs - FENCE_BASE_US) / FENCE_EPOCH_SPAN_US;
}

/**
 * The epoch a settler proposes when it takes a shard over: above the fence row's, above the
 * epoch of the last batch stored (the fence row and that batch can each have been lost by a
 * storage that went back in time, but not a batch that came after the fence), and above the
 * one this process held.
 */
export function nextEpoch(fenceEpoch: bigint | undefined, storedWriteTs: bigint, heldEpoch: bigint | undefined): bigint {
  let max = fenceEpoch ?? 0n;
  const stored = epochOfTimestamp(storedWriteTs);
  if (stored > max) max = stored;
  if (heldEpoch !== undefined && heldEpoch > max) max = heldEpoch;
  return max + 1n;
}

export type WriteTimestamp =
  | { readonly ok: true; readonly writeTs: bigint }
  /** A later owner has written the shard: this epoch is over. */
  | { readonly ok: false; readonly reason: 'superseded'; readonly storedEpoch: bigint }
  /** The epoch's span is used up: take a new epoch. */
  | { readonly ok: false; readonly reason: 'exhausted' };

/**
 * The timestamp of the next batch of the owner of `epoch`: strictly above the stored watermark's
 * and above every timestamp this owner issued before (a batch whose acknowledgement was lost may
 * still land; the next one must not tie with it), inside the epoch's span.
 */
export function nextWriteTimestamp(input: { readonly epoch: bigint; readonly storedWriteTs: bigint; readonly lastIssuedTs: bigint | undefined }): WriteTimestamp {
  const storedEpoch = epochOfTimestamp(input.storedWriteTs);
  if (storedEpoch > input.epoch) return { ok: false, reason: 'superseded', storedEpoch };
  const floor = epochFloorUs(input.epoch);
  let ts = floor;
  if (input.storedWriteTs + FENCE_BATCH_STRIDE_US > ts) ts = input.storedWriteTs + FENCE_BATCH_STRIDE_US;
  if (input.lastIssuedTs !== undefined && input.lastIssuedTs + FENCE_BATCH_STRIDE_US > ts) ts = input.lastIssuedTs + FENCE_BATCH_STRIDE_US;
  if (ts >= floor + FENCE_EPOCH_SPAN_US) return { ok: false, reason: 'exhausted' };
  return { ok: true, writeTs: ts };
}
