/**
 * Which consistency levels give read-your-writes for a replication factor. A settler decides what
 * to write from what it reads (the watermark, the rows at take-over), and reads and writes at one
 * level, so a read must overlap every acknowledged write: R + W > RF replicas.
 */
export type ConsistencyName = 'one' | 'local_one' | 'local_quorum' | 'quorum';

/** Replicas a request at `consistency` waits for, out of `replicationFactor`. */
export function replicasAwaited(consistency: ConsistencyName, replicationFactor: number): number {
  return consistency === 'one' || consistency === 'local_one' ? 1 : Math.floor(replicationFactor / 2) + 1;
}

/** Undefined when reads at `consistency` see every write acknowledged at it; else why not. */
export function consistencyRefusal(consistency: ConsistencyName, replicationFactor: number): string | undefined {
  const awaited = replicasAwaited(consistency, replicationFactor);
  if (2 * awaited > replicationFactor) return undefined;
  return (
    `scylladb.consistency ${consistency} with replication factor ${replicationFactor}: a read waits for ${awaited} of ${replicationFactor} replicas ` +
    `and may miss a write acknowledged by ${awaited} others; use local_quorum or quorum (or replication factor 1)`
  );
}
