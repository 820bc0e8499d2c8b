/**
 * Bounded history partitions (issue 20.2). A user's history rows are partitioned by
 * (user, symbol, bucket) for trades and (user, bucket) for funding events, where the bucket is
 * the message's own time (the engine's settled_at / created_at, ms) in HISTORY_BUCKET_MS slices:
 * derived from the message alone, so a re-applied job writes the very same rows.
 *
 * Why 10 s: at 5,000 trades/s, all on one symbol and every one paying a fee, the fee account gets
 * 5,000 rows/s, 50,000 per bucket; a user on both sides of every trade 100,000. A trades row is
 * ~0.8-1 KB in Cassandra 2.1's storage format (13 regular cells, each carrying the clustering
 * prefix, column name, timestamp and value; ScyllaDB and Cassandra ≥ 3 store it in ~150 B), so a
 * partition stays under ~100 MB, however long the system runs.
 *
 * Which buckets a user has rows in is recorded beside the rows, in the same batch: one row per
 * (bucket, symbol) in history_buckets_by_user, partitioned by (user, kind, period) with a period
 * of one day (at most 8,640 buckets × symbols: a few hundred KB), and one row per period in
 * history_periods_by_user (365 a year per kind). Readers go periods → buckets → rows, so empty
 * buckets cost nothing and a sparse user's year is a few reads.
 */

/** Width of a history bucket, ms. */
export const HISTORY_BUCKET_MS = 10_000n;
/** Width of a period of the bucket index, ms (a whole number of buckets). */
export const HISTORY_PERIOD_MS = 86_400_000n;
/** Index statements per history row: its bucket and its period. */
export const HISTORY_INDEX_STATEMENTS_PER_ROW = 2;

export type HistoryKind = 'trades' | 'ledger';

/** The bucket of a message settled (or created) at `timeMs`. */
export function historyBucket(timeMs: bigint): bigint {
  if (timeMs < 0n) throw new RangeError(`history time must not be negative, got ${timeMs}`);
  return timeMs / HISTORY_BUCKET_MS;
}

/** The period (bucket-index partition) a bucket belongs to. */
export function historyPeriodOfBucket(bucket: bigint): bigint {
  return (bucket * HISTORY_BUCKET_MS) / HISTORY_PERIOD_MS;
}

/** Buckets of [fromMs, toMs] (inclusive; open ends undefined). */
export function bucketRange(fromMs: bigint | undefined, toMs: bigint | undefined): { readonly first: bigint | undefined; readonly last: bigint | undefined } {
  return { first: fromMs === undefined ? undefined : historyBucket(fromMs), last: toMs === undefined ? undefined : historyBucket(toMs) };
}
