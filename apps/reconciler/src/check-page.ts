/**
 * One page of users, start to end: verify every user (findings read twice), confirm negative
 * balances on a cut, fix when the run asks for it, then record the findings and count the page.
 */
import type { ConservationTally, ShardBalanceRow } from '@settlement/domain';
import type { FindingRecord } from '@settlement/scylla';
import type { Logger } from '@settlement/runtime';
import { confirmNegatives } from './confirm-negatives.js';
import { fixPage } from './fix-page.js';
import type { ReconcileDeps } from './run-deps.js';
import { countUsers } from './run-metrics.js';
import { recordFindings } from './run-record.js';
import type { RunTally } from './run-tally.js';
import { verifyPage } from './verify-balance.js';

/** What every page of a run shares. */
export interface PageRun {
  readonly deps: ReconcileDeps;
  readonly jobId: string;
  readonly fix: boolean;
  readonly signal: AbortSignal | undefined;
  readonly log: Logger;
  readonly tally: RunTally;
  /** Full runs only: the balance rows of every page are summed for the conservation check. */
  readonly conservation: ConservationTally | undefined;
}

export async function checkPage(run: PageRun, userIds: readonly bigint[]): Promise<void> {
  const { deps, tally, signal } = run;
  const r = deps.config.reconciliation;
  const checked = await verifyPage(deps.reader, userIds, { feeAccountUserId: deps.config.fee_account_user_id, concurrency: r.concurrency, confirmDelayMs: r.confirm_delay_ms, signal });
  const { users: verified, unconfirmed } = await confirmNegatives(deps, checked, signal, run.log);
  tally.unconfirmedNegatives += unconfirmed;
  let records: FindingRecord[];
  let rowsByUser = new Map<bigint, ShardBalanceRow[]>(verified.map((u) => [u.userId, u.rows]));
  if (run.fix && verified.some((u) => u.findings.length > 0)) {
    const fixed = await fixPage(deps, run.jobId, verified, signal, run.log);
    records = fixed.records;
    rowsByUser = fixed.rowsByUser;
    tally.correctionJobs += fixed.correctionJobs;
  } else {
    records = verified.flatMap((u) => u.findings.map((finding) => ({ finding, fixed: false })));
  }
  for (const rows of rowsByUser.values()) run.conservation?.addBalanceRows(rows);
  await recordFindings(deps, run.jobId, tally, records);
  tally.addUsers(verified);
  countUsers(deps.metrics, verified);
}
