/**
 * The ingestor's position in Redis: a hash, field = shard (plus "global" and
 * "funding:assigned", see apps/ingestor/src/state.ts), value = the last sequence enqueued, as a
 * decimal string, written in the same MULTI as the jobs. Read by the settler and the dashboard
 * (lag) and the reconciler (settlement cut). Defined here once for every process.
 */
export function ingestPositionKey(prefix: string): string {
  return `${prefix}:ingest:last-enqueued`;
}
