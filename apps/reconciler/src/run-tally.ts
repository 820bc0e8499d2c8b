/** The counts of one run as it goes (users, rows, findings by kind, the first samples), for progress and the summary. */
import { isBalanceError, isFixable } from '@settlement/domain';
import type { FindingRecord } from '@settlement/scylla';
import type { ReconcileProgress } from './run-progress.js';
import type { ReconcileSummary } from './run-summary.js';
import type { VerifiedUser } from './verify-balance.js';

const SAMPLES_MAX = 20;

export class RunTally {
  usersChecked = 0;
  rowsChecked = 0;
  rereadUsers = 0;
  unconfirmedNegatives = 0;
  errors = 0;
  warnings = 0;
  fixed = 0;
  notFixed = 0;
  correctionJobs = 0;
  readonly byKind: Record<string, number> = {};
  readonly samples: ReconcileSummary['samples'][number][] = [];

  addUsers(verified: readonly VerifiedUser[]): void {
    this.usersChecked += verified.length;
    this.rowsChecked += verified.reduce((n, u) => n + u.rowsChecked, 0);
    this.rereadUsers += verified.filter((u) => u.reread).length;
  }

  addFindings(records: readonly FindingRecord[]): void {
    for (const { finding: f, fixed } of records) {
      this.byKind[f.kind] = (this.byKind[f.kind] ?? 0) + 1;
      if (isBalanceError(f.kind)) this.errors += 1;
      else this.warnings += 1;
      if (fixed) this.fixed += 1;
      else if (isFixable(f)) this.notFixed += 1;
      if (this.samples.length < SAMPLES_MAX) {
        this.samples.push({
          kind: f.kind,
          ...(f.userId === undefined ? {} : { userId: f.userId.toString() }),
          ...(f.assetId === undefined ? {} : { assetId: f.assetId }),
          ...(f.shard === undefined ? {} : { shard: f.shard }),
          message: f.message,
        });
      }
    }
  }

  progress(phase: ReconcileProgress['phase'], percent: number): ReconcileProgress {
    return { phase, percent: Math.min(100, Math.max(0, Math.round(percent * 10) / 10)), usersChecked: this.usersChecked, rowsChecked: this.rowsChecked, errors: this.errors, warnings: this.warnings };
  }
}
