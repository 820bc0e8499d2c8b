/**
 * Negative balances are the one finding that depends on when the shards were read: a user's
 * rows of different shards may be at different points of settlement. They are re-checked on a
 * cut before they count.
 */
import pMap from 'p-map';
import { ReconcileFindingKind, confirmFindings, negativeBalanceFindings, type ReconcileFinding } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { ReconcileDeps } from './run-deps.js';
import { waitForCut } from './settlement-cut.js';
import type { VerifiedUser } from './verify-balance.js';

const isNegative = (f: ReconcileFinding) => f.kind === ReconcileFindingKind.NEGATIVE_BALANCE;

/**
 * Negative balances of a page, re-checked on a cut: once every shard has applied what was
 * enqueued when they were seen, the users' rows are read again and only negatives still there
 * count. Other findings are per row and version-consistent already.
 */
export async function confirmNegatives(deps: ReconcileDeps, verified: VerifiedUser[], signal: AbortSignal | undefined, log: Logger): Promise<{ users: VerifiedUser[]; unconfirmed: number }> {
  const suspects = verified.filter((u) => u.findings.some(isNegative));
  if (suspects.length === 0 || deps.enqueuedHeads === undefined) return { users: verified, unconfirmed: 0 };
  const heads = await deps.enqueuedHeads();
  const reached = await waitForCut(deps.reader, heads, deps.config.reconciliation.negative_cut_wait_ms, signal);
  const reread = await pMap(suspects, (u) => deps.reader.userBalanceRows(u.userId), { concurrency: deps.config.reconciliation.concurrency });
  const rowsByUser = new Map(suspects.map((u, i) => [u.userId, reread[i]!]));
  let unconfirmed = 0;
  const users = verified.map((u) => {
    const rows = rowsByUser.get(u.userId);
    if (rows === undefined) return u;
    const confirmed = confirmFindings(u.findings.filter(isNegative), negativeBalanceFindings(u.userId, rows));
    if (!reached) {
      unconfirmed += confirmed.length;
      if (confirmed.length > 0) log.warn({ userId: u.userId, negatives: confirmed.length, heads: Object.fromEntries(heads) }, 'negative balance not confirmed: the shards did not reach the enqueued sequences in time');
    }
    return { ...u, findings: [...u.findings.filter((f) => !isNegative(f)), ...(reached ? confirmed : [])] };
  });
  return { users, unconfirmed };
}
