/**
 * What a run persists, as it goes: its row in reconciliation_jobs (when it starts and when it
 * ends) and every finding in reconciliation_errors once its page is done, so memory stays
 * bounded by one page.
 */
import type { FindingRecord, ReconciliationJobRecord, ReconciliationStore } from '@settlement/scylla';
import type { ReconcileDeps } from './run-deps.js';
import { countFindings } from './run-metrics.js';
import type { ReconcileSummary } from './run-summary.js';
import type { RunTally } from './run-tally.js';

/** The fields of a run's row that do not change while it runs. */
export type RunKey = Pick<ReconciliationJobRecord, 'jobId' | 'trigger' | 'mode' | 'fix' | 'startedAt'>;

export async function saveRunStarted(store: ReconciliationStore, key: RunKey): Promise<void> {
  await store.saveJob({ ...key, status: 'running', usersChecked: 0, rowsChecked: 0, errors: 0, durationMs: 0, summary: '{}' });
}

export async function saveRunFinished(store: ReconciliationStore, key: RunKey, summary: ReconcileSummary, finished: Date): Promise<void> {
  await store.saveJob({
    ...key,
    status: summary.status,
    finishedAt: finished,
    usersChecked: summary.usersChecked,
    rowsChecked: summary.rowsChecked,
    errors: summary.errors,
    durationMs: summary.durationMs,
    summary: JSON.stringify(summary),
  });
}

/** Stores findings, then counts them in the run's tally and the metrics. */
export async function recordFindings(deps: ReconcileDeps, jobId: string, tally: RunTally, records: readonly FindingRecord[]): Promise<void> {
  if (records.length > 0) await deps.store.recordFindings(jobId, records);
  tally.addFindings(records);
  countFindings(deps.metrics, records);
}
