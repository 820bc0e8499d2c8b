/**
 * verify_balance(user): read the user's balance rows, then their history, and recompute each
 * row up to its version. A batch is atomic but not isolated, so a read may see part of a batch
 * that is being written, or a batch whose coordinator died may wait for its batchlog replay; a
 * user with findings is read again, and only findings seen twice count.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pMap from 'p-map';
import { BalanceRecompute, confirmFindings, type ReconcileFinding, type ShardBalanceRow } from '@settlement/domain';
import type { ReconciliationReader } from '@settlement/scylla';

export interface VerifiedUser {
  readonly userId: bigint;
  /** The rows as last read (after the re-read when there was one). */
  readonly rows: ShardBalanceRow[];
  /** Confirmed findings. */
  readonly findings: ReconcileFinding[];
  readonly rowsChecked: number;
  /** Whether the first read had findings and the user was read again. */
  readonly reread: boolean;
}

async function readOnce(reader: ReconciliationReader, userId: bigint, feeAccountUserId: bigint) {
  // Rows first, then history: history written after the rows were read has seq > version and
  // is ignored, so a concurrent settler does not make a correct row look wrong.
  const rows = await reader.userBalanceRows(userId);
  const recompute = new BalanceRecompute(userId, rows, feeAccountUserId);
  // The two histories are independent and the fold does not depend on order: read them at once.
  await Promise.all([
    (async () => {
      for await (const trade of reader.userTrades(userId)) recompute.addTrade(trade);
    })(),
    (async () => {
      for await (const event of reader.userFundingEvents(userId)) recompute.addFunding(event);
    })(),
  ]);
  return { rows, check: recompute.result() };
}

/**
 * Verifies a page of users: every user read once; those with findings read again once
 * `confirmDelayMs` has passed since the page's first read (reconciliation.confirm_delay_ms:
 * longer than a batchlog replay takes to land), so a batch still in flight is not taken for an
 * error. One wait per page, not per user.
 */
export async function verifyPage(
  reader: ReconciliationReader,
  userIds: readonly bigint[],
  options: { feeAccountUserId: bigint; concurrency: number; confirmDelayMs: number; signal?: AbortSignal | undefined },
): Promise<VerifiedUser[]> {
  const startedMs = Date.now();
  const first = await pMap(userIds, (userId) => readOnce(reader, userId, options.feeAccountUserId), { concurrency: options.concurrency });
  const suspects = userIds.filter((_, i) => first[i]!.check.findings.length > 0);
  const second = new Map<bigint, Awaited<ReturnType<typeof readOnce>>>();
  if (suspects.length > 0) {
    const waitMs = startedMs + options.confirmDelayMs - Date.now();
    if (waitMs > 0) await sleep(waitMs, undefined, { signal: options.signal }).catch(() => undefined);
    const again = await pMap(suspects, (userId) => readOnce(reader, userId, options.feeAccountUserId), { concurrency: options.concurrency });
    suspects.forEach((userId, i) => second.set(userId, again[i]!));
  }
  return userIds.map((userId, i) => {
    const once = first[i]!;
    const twice = second.get(userId);
    if (twice === undefined) return { userId, rows: once.rows, findings: [], rowsChecked: once.check.rowsChecked, reread: false };
    return { userId, rows: twice.rows, findings: confirmFindings(once.check.findings, twice.check.findings), rowsChecked: twice.check.rowsChecked, reread: true };
  });
}

/** One user, read again at once when the first read has findings (after corrections were applied). */
export async function verifyBalance(reader: ReconciliationReader, userId: bigint, feeAccountUserId: bigint): Promise<VerifiedUser> {
  const first = await readOnce(reader, userId, feeAccountUserId);
  if (first.check.findings.length === 0) {
    return { userId, rows: first.rows, findings: [], rowsChecked: first.check.rowsChecked, reread: false };
  }
  const second = await readOnce(reader, userId, feeAccountUserId);
  return {
    userId,
    rows: second.rows,
    findings: confirmFindings(first.check.findings, second.check.findings),
    rowsChecked: second.check.rowsChecked,
    reread: true,
  };
}
