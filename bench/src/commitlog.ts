/** The commit log modes of the private Cassandras of the chaos run and the bench's durability ceiling. */

/**
 * The private Cassandra's commit log: `periodic` exactly as `npm start` / `npm run stack:up`
 * start it (Cassandra's default, synced every 10 s: a kill -9 loses what was acknowledged since
 * the last sync), or `batch` (synced before each acknowledgement, window 2 ms: the hardened
 * variant the run used before).
 */
export type CommitlogMode = 'periodic' | 'batch';
export const COMMITLOG_MODES: readonly CommitlogMode[] = ['periodic', 'batch'];

/**
 * cassandra.yaml settings on top of the local stack's (tools/stack/cassandra.ts) per mode.
 * Periodic: none, so the run's Cassandra is the one users get.
 */
export function cassandraYamlOverrides(mode: CommitlogMode): Record<string, unknown> | undefined {
  if (mode === 'periodic') return undefined;
  // Acknowledged writes must survive a kill -9: sync the commit log before acknowledging.
  // One flush writer: Cassandra 2.1.0 replays the commit log per table from the position of
  // its newest flush, so flushes completing out of order can skip records (CASSANDRA-9669).
  // Standard disk access: 2.1.0 cannot unmap files on Java 17 and says so at start-up.
  return {
    commitlog_sync: 'batch',
    commitlog_sync_batch_window_in_ms: 2,
    commitlog_sync_period_in_ms: undefined,
    memtable_flush_writers: 1,
    disk_access_mode: 'standard',
  };
}
