/**
 * Every Redis key the processes share, defined here once: a process that writes a key and one
 * that reads it both call the function below, so they cannot drift apart. Each key starts with
 * the configured prefix (`redis.prefix`, a hash tag such as `{settlement}` on a cluster, so all
 * keys land in one slot). BullMQ's own keys (`<prefix>:<queue>:…`) are BullMQ's; the queue names
 * are in job.ts.
 */

/**
 * The ingestor's position: a hash, field = shard (plus "global" and "funding:assigned", see
 * apps/ingestor/src/state.ts), value = the last sequence enqueued, as a decimal string, written
 * in the same MULTI as the jobs. Read by the settler and the dashboard (lag) and the reconciler
 * (settlement cut).
 */
export function ingestPositionKey(prefix: string): string {
  return `${prefix}:ingest:last-enqueued`;
}

/**
 * Halted shards: a hash, field = shard, value = a HaltedShardRange (halted-shards.ts), written
 * by the halted settler, read and cleared by the ingestor's redrive.
 */
export function haltedShardsKey(prefix: string): string {
  return `${prefix}:settle:halted`;
}

/** The settler processes alive (a sorted set scored by last sign of life; see LeaseBalancer). */
export function settlerMembersKey(prefix: string): string {
  return `${prefix}:settle:members`;
}

/** The settler processes waiting for a share of the shards (see LeaseBalancer). */
export function settlerWantingKey(prefix: string): string {
  return `${prefix}:settle:wanting`;
}

/** The lease of one shard: holds the id of the settler process that settles it. */
export function shardLeaseKey(prefix: string, shard: string): string {
  return `${prefix}:settle:lease:${shard}`;
}

/** The claim of the settler that last wrote a shard (ShardKnowledge: is the cache still ours?). */
export function shardWriterKey(prefix: string, shard: string): string {
  return `${prefix}:settle:writer:${shard}`;
}

/**
 * A pub/sub channel, not a key: a settler publishes a shard's name on it each time it has
 * finished a job of that shard (JobsDoneNotice), so the ingestor cuts the shard's held partial
 * job at once instead of at its next poll of the queue.
 */
export function jobsDoneChannel(prefix: string): string {
  return `${prefix}:settle:jobs-done`;
}

/** Redis's copy of a shard's fencing epoch (ShardFence: outlives a lost fence row). */
export function shardEpochKey(prefix: string, shard: string): string {
  return `${prefix}:settle:epoch:${shard}`;
}

/** Users whose balances changed in one hour (hours since the epoch): a set, per ChangedUsers. */
export function changedUsersKey(prefix: string, hour: number): string {
  return `${prefix}:reconcile:changed:${hour}`;
}

/** One process's heartbeat (JSON, with a TTL of three intervals; see startHeartbeat). */
export function heartbeatKey(prefix: string, app: string, instanceId: string): string {
  return `${prefix}:heartbeat:${app}:${instanceId}`;
}

/** SCAN pattern of every heartbeat, or of one app's when `app` is given (restated in docker/healthcheck.mjs, which runs alone). */
export function heartbeatPattern(prefix: string, app?: string): string {
  return app === undefined ? `${prefix}:heartbeat:*` : `${prefix}:heartbeat:${app}:*`;
}

/** The dashboard overview's last hour of one shard (a sorted set scored by ms). */
export function overviewSamplesKey(prefix: string, shard: string): string {
  return `${prefix}:overview:samples:${shard}`;
}
