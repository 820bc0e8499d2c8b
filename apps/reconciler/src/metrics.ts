import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The reconciler's metrics, in a registry of its own (published by the heartbeat). */
export interface ReconcilerMetrics {
  readonly registry: Registry;
  readonly runs: Counter<'mode' | 'status'>;
  readonly findings: Counter<'kind'>;
  readonly usersChecked: Counter;
  readonly rowsChecked: Counter;
  readonly corrections: Counter<'shard' | 'outcome'>;
  readonly runDurationSeconds: Histogram<'mode'>;
  readonly lastRunErrors: Gauge<'mode'>;
  readonly lastRunFinishedSeconds: Gauge<'mode'>;
}

export function createReconcilerMetrics(registry = new Registry()): ReconcilerMetrics {
  return {
    registry,
    runs: new Counter({ name: 'reconciler_runs_total', help: 'Reconciliation runs by mode and final status', labelNames: ['mode', 'status'], registers: [registry] }),
    findings: new Counter({ name: 'reconciler_findings_total', help: 'Findings recorded, by kind', labelNames: ['kind'], registers: [registry] }),
    usersChecked: new Counter({ name: 'reconciler_users_checked_total', help: 'Users whose balance rows were verified', registers: [registry] }),
    rowsChecked: new Counter({ name: 'reconciler_rows_checked_total', help: 'Balance rows verified', registers: [registry] }),
    corrections: new Counter({ name: 'reconciler_corrections_total', help: 'Correction jobs by shard and outcome', labelNames: ['shard', 'outcome'], registers: [registry] }),
    runDurationSeconds: new Histogram({
      name: 'reconciler_run_duration_seconds',
      help: 'Duration of a reconciliation run, s',
      labelNames: ['mode'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers: [registry],
    }),
    lastRunErrors: new Gauge({ name: 'reconciler_last_run_errors', help: 'Balance errors found by the last finished run', labelNames: ['mode'], registers: [registry] }),
    lastRunFinishedSeconds: new Gauge({ name: 'reconciler_last_run_finished_seconds', help: 'When the last run finished, Unix s', labelNames: ['mode'], registers: [registry] }),
  };
}
