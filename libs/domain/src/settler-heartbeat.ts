/**
 * What a settler reports of each shard it serves in its heartbeat (libs/runtime startHeartbeat:
 * `status[shard]`, JSON), read by the dashboard to tell which process settles a shard and which
 * shard is halted. Sequences travel as decimal strings.
 *
 * Read field by field, not all or nothing: a settler of an older release (no `leaseHeld`) or one
 * bad field costs only that field, never the rest of the process's report.
 */

/** The app name settlers publish their heartbeat under. */
export const SETTLER_APP = 'settler';

/** One shard of a settler's heartbeat status, as published. */
export interface SettlerShardHeartbeat {
  /** Shard watermark as this process knows it, decimal. */
  readonly lastSeq: string;
  /** Last sequence enqueued by the ingestor minus the watermark; null when unknown. */
  readonly lagMessages: number | null;
  /** This process holds the shard's lease: it is the shard's settler (always true without leases). */
  readonly leaseHeld: boolean;
  /**
   * Set while the shard is halted: no job in Redis holds the messages after `afterSeq` through
   * `throughSeq` (decimal), which the engine must re-send. Absent otherwise.
   */
  readonly halted?: { readonly afterSeq: string; readonly throughSeq: string };
}

export interface SettlerShardState {
  readonly lastSeq: bigint;
  readonly lagMessages: number | null;
  readonly leaseHeld: boolean;
  readonly halted?: { readonly afterSeq: bigint; readonly throughSeq: bigint } | undefined;
}

export function encodeSettlerShardHeartbeat(s: SettlerShardState): SettlerShardHeartbeat {
  return {
    lastSeq: s.lastSeq.toString(),
    lagMessages: s.lagMessages,
    leaseHeld: s.leaseHeld,
    ...(s.halted === undefined ? {} : { halted: { afterSeq: s.halted.afterSeq.toString(), throughSeq: s.halted.throughSeq.toString() } }),
  };
}

/** What a reader takes from one shard's report: only what it could decode. */
export interface SettlerShardReport {
  /** False when absent or not `true`. */
  readonly leaseHeld: boolean;
  /** Undefined when absent or malformed. */
  readonly halted: { readonly afterSeq: bigint; readonly throughSeq: bigint } | undefined;
}

const SEQ = /^\d{1,20}$/;

/** One shard's report; undefined when it is not an object at all. */
export function decodeSettlerShardHeartbeat(value: unknown): SettlerShardReport | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { leaseHeld, halted } = value as { leaseHeld?: unknown; halted?: { afterSeq?: unknown; throughSeq?: unknown } };
  const afterSeq = halted?.afterSeq;
  const throughSeq = halted?.throughSeq;
  const wellFormed = typeof afterSeq === 'string' && typeof throughSeq === 'string' && SEQ.test(afterSeq) && SEQ.test(throughSeq);
  return { leaseHeld: leaseHeld === true, halted: wellFormed ? { afterSeq: BigInt(afterSeq), throughSeq: BigInt(throughSeq) } : undefined };
}
