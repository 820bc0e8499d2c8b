/**
 * Bounded history partitions (issue 20.2). A user's history rows are partitioned by
 * (user, symbol, bucket) for trades and (user, bucket) for funding events, where the bucket is
 * the message's shard sequence divided by the keyspace's bucket width (`bucketSeqs`, fixed when
 * the keyspace is created: history_layout):
 *
 * - Bounded whatever the rate or the time: a user has at most one history row per message of a
 *   shard (two in a self-trade, the fee account one per trade with a fee), so a (user, stream,
 *   bucket) partition holds at most 2 × bucketSeqs rows, bucketSeqs outside self-trades. With
 *   ~1 KB a row as Cassandra 2.1 stores it (~610 B as a batch counts it, STATEMENT_BYTES) and the
 *   default 65,536 that is ≤ ~64 MB.
 * - Deterministic: derived from the message's seq alone, so a job applied again (after a doubt
 *   about storage) writes the very same rows into the very same partitions.
 *
 * Which buckets a user has rows in is recorded beside the rows, in the same batch: one row per
 * (user, stream, bucket) in user_history_buckets (stream = the symbol, or 'funding'), so readers
 * skip empty buckets. At 5,000 trades/s for a year (~1.6e11 messages) the fee account has
 * ~2.4 M such rows a year (~80 MB), the index's largest partition.
 */

/** Default width of a history bucket, in shard sequences (scylladb.history_bucket_seqs). */
export const DEFAULT_HISTORY_BUCKET_SEQS = 65_536n;

/** The stream of funding events in user_history_buckets (trades use their symbol). */
export const FUNDING_HISTORY_STREAM = 'funding';

/** The bucket of the history rows of the message at shard sequence `seq`. */
export function historyBucket(seq: bigint, bucketSeqs: bigint): bigint {
  if (bucketSeqs < 1n) throw new RangeError(`history bucket width must be at least 1, got ${bucketSeqs}`);
  if (seq < 0n) throw new RangeError(`shard sequence must not be negative, got ${seq}`);
  return seq / bucketSeqs;
}
