/** What a reconciliation run is given: its clients and settings (ReconcileDeps) and, per run, its id and hooks. */
import type { SettlementConfig } from '@settlement/config';
import type { DeadLetterRepository, ReconciliationReader, ReconciliationStore, SequenceGapRepository } from '@settlement/scylla';
import type { ChangedUsers, Logger } from '@settlement/runtime';
import type { CorrectionSender } from './corrections.js';
import type { ReconcilerMetrics } from './metrics.js';
import type { ProgressListener } from './run-progress.js';

export interface ReconcileDeps {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly reader: ReconciliationReader;
  readonly store: ReconciliationStore;
  readonly gaps: SequenceGapRepository;
  readonly deadLetters: DeadLetterRepository;
  /** Required for runs with fix. */
  readonly corrections?: CorrectionSender | undefined;
  readonly metrics?: ReconcilerMetrics | undefined;
  /**
   * Last enqueued sequence per shard (the ingestor's hash in Redis). A negative balance is
   * re-checked once the shards have applied this much; without it, it is checked at once.
   */
  readonly enqueuedHeads?: (() => Promise<Map<string, bigint>>) | undefined;
  /** The users the settlers recorded as changed, per hour (for 'changed' runs); without it such a run is a full one. */
  readonly changedUsers?: Pick<ChangedUsers, 'between'> | undefined;
}

export interface ReconcileRunOptions {
  /** Id of the run in reconciliation_jobs (the BullMQ job id, or one made up by the caller). */
  readonly jobId: string;
  /** Who asked: scheduler, manual, cli, chaos, … */
  readonly trigger: string;
  /** When aborted, the run finishes the page it is on and stops, with status 'abandoned'. */
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressListener | undefined;
  /** Source of sample start tokens; crypto-random by default. */
  readonly randomToken?: (() => bigint) | undefined;
}
