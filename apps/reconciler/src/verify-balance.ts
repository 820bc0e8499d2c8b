/**
 * verify_balance(user): read the user's balance rows, then their history, and recompute each
 * row up to its version. A batch is atomic but not isolated, so a read may see part of a batch
 * that is being written; a user with findings is read again, and only findings seen twice count.
 */
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
