/**
 * What a chaos run takes and what it reports: its options, each fault done, each end check, and
 * the report runChaos returns (chaos-run.ts).
 */
import type { Logger } from 'pino';
import type { CommitlogMode } from './commitlog.js';
import type { FaultKind } from './chaos-fault-plan.js';
import type { RingThroughput } from './chaos-ring.js';
import type { RedisPersistence } from './private-redis.js';

export interface ChaosOptions {
  /** Trades in the stream, exactly; funding events (deposits, locks, …) come on top. */
  readonly trades: number;
  readonly faults: number;
  readonly seed: number;
  /** Offered rate, messages/s. */
  readonly ratePerSecond: number;
  readonly users: number;
  readonly settlers: number;
  /**
   * Ports of the run's own: Redis on portBase, the ingestor's PULL on +1, the replay endpoint on
   * +2, Cassandra's CQL on +3 (its storage ports are derived from that, 2 042 lower).
   */
  readonly portBase: number;
  /** Fault kinds to use (default all); each is used at least once when faults ≥ kinds. */
  readonly kinds?: readonly FaultKind[];
  /** The private Cassandra's commit log. Default `periodic`, as users run it. */
  readonly commitlog?: CommitlogMode;
  /** The private Redis's persistence. Default: `none` with a periodic commit log, `aof-always` with `batch`. */
  readonly redisPersistence?: RedisPersistence;
  /** kill -9 of Cassandra in the run, at least; default 3 (when `kinds` has kill-cassandra). */
  readonly cassandraKills?: number;
  /** Called as each fault is done (the run also logs it). */
  readonly onFault?: (fault: FaultRecord) => void;
  readonly logger: Logger;
  /** Where logs and the private stack's files go; emptied at the start. */
  readonly workDir: string;
  /**
   * Run on a private local three-node ring on `port` (CQL; storage ports port − 2042/2041) at RF=3
   * and local_quorum instead of the single node (chaos-ring.ts); its folder is workDir/ring.
   */
  readonly ring?: { readonly port: number };
  /** Wall-clock offsets of settler 1, 2, … in seconds (libfaketime); the others keep the machine's clock. */
  readonly settlerClockOffsetsS?: readonly number[];
  /** Longest wait for every shard to settle after the last fault, ms. Default 600 000. */
  readonly settleTimeoutMs?: number;
  /** The wait ends early when no shard's watermark moved for this long, ms. Default 120 000. */
  readonly stallTimeoutMs?: number;
  /**
   * Abandons the run (a test that timed out): from then on no process or store is started again;
   * the caller kills what runs (ChaosLeftovers.reap).
   */
  readonly signal?: AbortSignal;
}

export interface FaultRecord {
  /** Since the stream started, ms. */
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly target: string;
  readonly durationMs: number;
  /**
   * What the fault did to the stores: for a Cassandra fault, each shard's stored watermark just
   * before and right after (storage going back shows as a lower value after); for Redis, whether
   * it came back empty.
   */
  readonly detail?: string;
}

export interface ChaosCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ProcessExit {
  readonly name: string;
  /** Since the stream started, ms. */
  readonly atMs: number;
  readonly code: number | null;
}

export interface ChaosReport {
  readonly seed: number;
  readonly commitlog: CommitlogMode;
  readonly redisPersistence: RedisPersistence;
  readonly messages: number;
  readonly trades: number;
  readonly faults: FaultRecord[];
  readonly injected: { duplicates: number; swaps: number; malformed: number };
  readonly checks: ChaosCheck[];
  readonly ok: boolean;
  /** Processes that exited without being told to (each was started again). */
  readonly unexpectedExits: ProcessExit[];
  /** Stack start-up until the stream starts, ms. */
  readonly setupMs: number;
  /** The stream, start to last message sent, ms. */
  readonly sendMs: number;
  /** Stream start until every shard's watermark reached its last sequence, ms. */
  readonly settledMs: number;
  /** The end checks (reads and the full reconciliation), ms. */
  readonly checkMs: number;
  readonly elapsedMs: number;
  /** On a ring: its contact points and the settled rate while a node was away against the overall one. */
  readonly ring?: { readonly hosts: readonly string[]; readonly replicationFactor: number; readonly consistency: string; readonly throughput: RingThroughput };
  /** Settler name → wall-clock offset, s (only those shifted). */
  readonly settlerClocks?: Record<string, number>;
}
