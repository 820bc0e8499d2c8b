/** What a run reports at its end: the summary it returns (the BullMQ job's return value) and stores as reconciliation_jobs.summary. */
import type { ReconcileJobRequest } from '@settlement/domain';
import type { RunTally } from './run-tally.js';

export type ReconcileRunStatus = 'completed' | 'abandoned' | 'failed';

/** Full mode only: whether the balances summed to what the funding events say, per asset. */
export interface ConservationSummary {
  readonly checked: boolean;
  readonly reason?: string;
  readonly assets: ReadonlyArray<{ assetId: number; available: string; locked: string; expected: string; ok: boolean }>;
}

/** What a run returns (the BullMQ job's return value) and stores as reconciliation_jobs.summary. JSON-safe. */
export interface ReconcileSummary {
  readonly jobId: string;
  readonly trigger: string;
  readonly mode: ReconcileJobRequest['mode'];
  readonly fix: boolean;
  readonly status: ReconcileRunStatus;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly usersChecked: number;
  readonly rowsChecked: number;
  readonly rowsPerSecond: number;
  /** Users that had a finding on the first read and were read again. */
  readonly rereadUsers: number;
  /** Balance errors (mismatch, missing row, negative balance, invalid history, conservation). */
  readonly errors: number;
  /** Sequence gaps and dead-letter shards: kept on purpose, reported for attention. */
  readonly warnings: number;
  /**
   * Negative balances seen while the shards were at different points that could not be
   * re-checked in time (the backlog did not drain within negative_cut_wait_ms): not counted.
   */
  readonly unconfirmedNegatives: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** Findings a correction repaired (re-checked after the settler applied it). */
  readonly fixed: number;
  /** Fixable findings whose correction did not apply or did not repair the row. */
  readonly notFixed: number;
  readonly correctionJobs: number;
  /** Full mode only. */
  readonly conservation?: ConservationSummary;
  /** The first findings, for a quick look; all are in reconciliation_errors. */
  readonly samples: ReadonlyArray<{ kind: string; userId?: string; assetId?: number; shard?: string; message: string }>;
  readonly error?: string;
}

/** The end of a run, as summarize() needs it. */
export interface RunEnd {
  readonly jobId: string;
  readonly trigger: string;
  readonly mode: ReconcileSummary['mode'];
  readonly fix: boolean;
  readonly status: ReconcileRunStatus;
  readonly started: Date;
  readonly finished: Date;
  readonly durationMs: number;
  readonly conservation: ConservationSummary | undefined;
  readonly error: string | undefined;
}

export function summarize(end: RunEnd, tally: RunTally): ReconcileSummary {
  const { durationMs } = end;
  return {
    jobId: end.jobId,
    trigger: end.trigger,
    mode: end.mode,
    fix: end.fix,
    status: end.status,
    startedAt: end.started.toISOString(),
    finishedAt: end.finished.toISOString(),
    durationMs,
    usersChecked: tally.usersChecked,
    rowsChecked: tally.rowsChecked,
    rowsPerSecond: durationMs > 0 ? Math.round((tally.rowsChecked * 1000) / durationMs) : tally.rowsChecked,
    rereadUsers: tally.rereadUsers,
    unconfirmedNegatives: tally.unconfirmedNegatives,
    errors: tally.errors,
    warnings: tally.warnings,
    byKind: tally.byKind,
    fixed: tally.fixed,
    notFixed: tally.notFixed,
    correctionJobs: tally.correctionJobs,
    ...(end.conservation === undefined ? {} : { conservation: end.conservation }),
    samples: tally.samples,
    ...(end.error === undefined ? {} : { error: end.error }),
  };
}
