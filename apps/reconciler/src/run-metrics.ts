/** What a run adds to the reconciler's metrics (see metrics.ts); every call is a no-op without metrics. */
import type { FindingRecord } from '@settlement/scylla';
import type { ReconcilerMetrics } from './metrics.js';
import type { ReconcileSummary } from './run-summary.js';
import type { VerifiedUser } from './verify-balance.js';

export function countUsers(metrics: ReconcilerMetrics | undefined, verified: readonly VerifiedUser[]): void {
  metrics?.usersChecked.inc(verified.length);
  metrics?.rowsChecked.inc(verified.reduce((n, u) => n + u.rowsChecked, 0));
}

export function countFindings(metrics: ReconcilerMetrics | undefined, records: readonly FindingRecord[]): void {
  for (const r of records) metrics?.findings.inc({ kind: r.finding.kind });
}

export function observeRun(metrics: ReconcilerMetrics | undefined, summary: ReconcileSummary, finished: Date): void {
  const { mode, status } = summary;
  metrics?.runs.inc({ mode, status });
  metrics?.runDurationSeconds.observe({ mode }, summary.durationMs / 1000);
  // A failed run's counts are partial: the gauges keep the last run that got to the end.
  if (status !== 'failed') {
    metrics?.lastRunErrors.set({ mode }, summary.errors);
    metrics?.lastRunFinishedSeconds.set({ mode }, finished.getTime() / 1000);
  }
}
