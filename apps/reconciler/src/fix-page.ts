/**
 * fix_balance for one page: plan a correction per wrong row (grouped by shard), send them to
 * the settlers, wait for them to apply, read the users again and record, per finding, whether
 * the correction repaired it.
 */
import pMap from 'p-map';
import { MarketCatalog, correctionRows, findingKey, isFixable, type ReconcileFinding, type ShardBalanceRow } from '@settlement/domain';
import type { FindingRecord } from '@settlement/scylla';
import type { Logger } from '@settlement/runtime';
import type { CorrectionRow, SentCorrection } from './corrections.js';
import type { ReconcileDeps } from './run-deps.js';
import { verifyBalance, type VerifiedUser } from './verify-balance.js';

function rowKey(userId: bigint, assetId: number | undefined, shard: string | undefined): string {
  return `${userId}/${assetId ?? '-'}/${shard ?? '-'}`;
}

/** The correction rows to send, per shard, for the fixable findings of a page. */
function planCorrections(verified: readonly VerifiedUser[], catalog: MarketCatalog): Map<string, CorrectionRow[]> {
  const findingsByShard = new Map<string, ReconcileFinding[]>();
  for (const f of verified.flatMap((u) => u.findings.filter(isFixable))) {
    // A row of a shard no settler serves cannot be corrected; it stays reported.
    if (catalog.isShard(f.shard!)) findingsByShard.set(f.shard!, [...(findingsByShard.get(f.shard!) ?? []), f]);
  }
  return new Map<string, CorrectionRow[]>([...findingsByShard].map(([shard, findings]) => [shard, correctionRows(findings)]));
}

/** fix_balance for one page: send corrections, wait for the settlers, re-check the users. */
export async function fixPage(
  deps: ReconcileDeps,
  jobId: string,
  verified: readonly VerifiedUser[],
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<{ records: FindingRecord[]; rowsByUser: Map<bigint, ShardBalanceRow[]>; correctionJobs: number }> {
  const catalog = new MarketCatalog(deps.config);
  const rowsByShard = planCorrections(verified, catalog);
  const rowsByUser = new Map<bigint, ShardBalanceRow[]>(verified.map((u) => [u.userId, u.rows]));
  if (rowsByShard.size === 0) {
    return { records: verified.flatMap((u) => u.findings.map((finding) => ({ finding, fixed: false, detail: unfixableDetail(finding, catalog) }))), rowsByUser, correctionJobs: 0 };
  }
  if (deps.corrections === undefined) throw new Error('a run with fix needs a correction sender (Redis)');

  const sent = await deps.corrections.apply(jobId, rowsByShard, deps.config.reconciliation.fix_wait_ms, signal);
  const sentByRow = new Map<string, { correction: SentCorrection; row: CorrectionRow }>();
  for (const correction of sent) {
    deps.metrics?.corrections.inc({ shard: correction.shard, outcome: correction.outcome });
    for (const row of correction.rows) sentByRow.set(rowKey(row.userId, row.assetId, correction.shard), { correction, row });
  }
  const corrected = verified.filter((u) => u.findings.some(isFixable));
  const recheck = new Map(
    (await pMap(corrected, (u) => verifyBalance(deps.reader, u.userId, deps.config.fee_account_user_id), { concurrency: deps.config.reconciliation.concurrency })).map((u) => [u.userId, u]),
  );
  const records: FindingRecord[] = [];
  for (const user of verified) {
    const after = recheck.get(user.userId);
    if (after === undefined) {
      records.push(...user.findings.map((finding) => ({ finding, fixed: false, detail: unfixableDetail(finding, catalog) })));
      continue;
    }
    rowsByUser.set(user.userId, after.rows);
    const remaining = new Set(after.findings.map(findingKey));
    // A fixed missing row could come back as a mismatch: the row is still wrong, whatever the kind.
    const wrongRows = new Set(after.findings.filter(isFixable).map((f) => rowKey(f.userId!, f.assetId, f.shard)));
    const allApplied = sent.filter((c) => c.rows.some((r) => r.userId === user.userId)).every((c) => c.outcome === 'completed');
    for (const finding of user.findings) {
      const sentRow = isFixable(finding) ? sentByRow.get(rowKey(finding.userId!, finding.assetId, finding.shard)) : undefined;
      if (sentRow === undefined && isFixable(finding)) {
        records.push({ finding, fixed: false, detail: unfixableDetail(finding, catalog) });
        continue;
      }
      const stillThere = remaining.has(findingKey(finding)) || (isFixable(finding) && wrongRows.has(rowKey(finding.userId!, finding.assetId, finding.shard)));
      const applied = sentRow === undefined ? allApplied : sentRow.correction.outcome === 'completed';
      const fixed = applied && !stillThere;
      const rowAfter = after.rows.find((r) => r.assetId === finding.assetId && r.shard === finding.shard);
      records.push({
        finding,
        fixed,
        detail: {
          fix:
            sentRow === undefined
              ? { resolvedBy: 'the corrections of this user', resolved: !stillThere }
              : {
                  correctionId: sentRow.correction.correctionId,
                  outcome: sentRow.correction.outcome,
                  availableDelta: sentRow.row.availableDelta,
                  lockedDelta: sentRow.row.lockedDelta,
                  before: { available: finding.actualAvailable ?? null, locked: finding.actualLocked ?? null, version: finding.version ?? null },
                  after: rowAfter === undefined ? null : { available: rowAfter.available, locked: rowAfter.locked, version: rowAfter.version },
                },
        },
      });
      if (isFixable(finding) && !fixed) {
        log.warn({ userId: finding.userId, assetId: finding.assetId, shard: finding.shard, outcome: sentRow?.correction.outcome }, 'correction did not repair the row');
      }
    }
  }
  return { records, rowsByUser, correctionJobs: sent.length };
}

function unfixableDetail(finding: ReconcileFinding, catalog: MarketCatalog): Record<string, unknown> | undefined {
  if (!isFixable(finding)) return undefined;
  if (!catalog.isShard(finding.shard!)) return { fix: { skipped: `shard ${finding.shard} is not configured: no settler applies corrections to it` } };
  return { fix: { skipped: 'not fixed' } };
}
