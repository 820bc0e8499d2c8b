/** The contracts of a shard's settler: its settings, what it is built from, what a job yields. */
import type { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import type { Market } from '@settlement/domain';
import type { BalanceRepository, DeadLetterRepository, FenceRepository, SettlementWriter, TradeRepository, WatermarkRepository } from '@settlement/scylla';
import type { CacheState } from './balance-cache.js';
import type { Closing } from './closing.js';
import type { SettlerMetrics } from './metrics.js';
import type { StorageWatch } from './storage-watch.js';

export interface ShardSettlerSettings {
  readonly batchStatementsMax: number;
  /** Estimated bytes per LOGGED BATCH (settler.batch_bytes_max). */
  readonly batchBytesMax: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly cacheRowsMax: number;
  /** Rows of the balance table a cache warm-up reads at most (settler.cache_warm_rows_max); 0: none. */
  readonly cacheWarmRowsMax: number;
  /** Jobs one chain recovery applies at most, and job ids read from each Redis list to find them. */
  readonly recoveryJobsMax: number;
  /** How long completed jobs are retained (settler.completed_jobs_retained_s), ms. */
  readonly completedJobsRetainedMs: number;
  /** The ingestor can have the engine re-send a range (zmq.replay_endpoint is set). */
  readonly engineCanResend: boolean;
}

export interface ShardSettlerDeps {
  readonly shard: string;
  /** The shard's market; undefined for the funding shard. */
  readonly market: Market | undefined;
  readonly assetIds: ReadonlySet<number>;
  readonly feeAccountUserId: bigint;
  readonly settings: ShardSettlerSettings;
  readonly client: cassandra.Client;
  readonly writer: SettlementWriter;
  readonly watermarks: WatermarkRepository;
  readonly trades: TradeRepository;
  readonly balances: BalanceRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly fences: FenceRepository;
  /**
   * Where the users of each acknowledged batch are recorded for the hourly reconciliation of
   * changed users (libs/runtime ChangedUsers). Best effort: the daily full sweep covers a miss.
   */
  readonly changedUsers?: { record(userIds: Iterable<bigint>): Promise<void> } | undefined;
  /** Bumped on every Cassandra error and node event of this process's client. */
  readonly storage: StorageWatch;
  /** The shard's queue: where retained jobs are looked for when the chain shows a hole. */
  readonly queue: Queue;
  /** BullMQ prefix (a hash tag); the shard's last-writer claim is kept under it. */
  readonly redisPrefix: string;
  readonly logger: Logger;
  readonly metrics: SettlerMetrics;
  readonly closing: Closing;
}

export interface JobOutcome {
  readonly applied: number;
  /** At or below the watermark when the job ran: settled before. */
  readonly skipped: number;
  readonly alreadySettled: number;
  readonly deadLettered: number;
  readonly batches: number;
  /** Watermark after the job. */
  readonly lastSeq: string;
}

export interface ShardState extends CacheState {
  readonly batchCount: bigint;
  /**
   * Highest trade_id settled in the shard, from the watermark row: every settled trade has an
   * id at or below it, so only incoming ids at or below it can be duplicates. Undefined when
   * unknown (a watermark written before it was kept): then every id is checked.
   */
  readonly maxTradeId: bigint | undefined;
  /** The job whose batch wrote the watermark, as read from it (undefined after our own writes). */
  readonly lastJobId?: string | undefined;
  /** When that batch was written, by its writer's clock, ms since the epoch (as read; undefined after our own writes). */
  readonly writtenAtMs?: number | undefined;
}

/** A range of the shard's chain that no retained job holds: the shard waits for it. */
export interface HaltedRange {
  readonly afterSeq: bigint;
  readonly throughSeq: bigint;
  /** The range is the watermark's own batch, to be re-sent and applied again (halted-shards.ts). */
  readonly reapply?: boolean | undefined;
}
