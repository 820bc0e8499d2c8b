/**
 * What one flush writes: BullMQ jobs (settlement jobs of any shard, dead-letter jobs) and the
 * new values of the ingestor's state hash. Written to Redis in one MULTI, or as one line of the
 * spool file while Redis is unreachable; both carry exactly the same content.
 */

export interface UnitJob {
  /** BullMQ queue name (settle-<shard> or the dead-letter queue). */
  readonly queue: string;
  readonly name: string;
  /** Custom job id: BullMQ ignores a second add with the same id, so rewriting a unit is safe. */
  readonly jobId: string;
  /** JSON-safe job data (bigints as decimal strings). */
  readonly data: unknown;
}

export interface EnqueueUnit {
  readonly jobs: readonly UnitJob[];
  /** Fields of the state hash (shard → last enqueued seq, …) as decimal strings. */
  readonly marks: Readonly<Record<string, string>>;
}

export interface UnitStats {
  /** Settlement messages in the unit. */
  readonly messages: number;
  /** Per job: when its first message was added, ms (for enqueue latency). */
  readonly firstAddedAtMs: readonly number[];
}
