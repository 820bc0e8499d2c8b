/**
 * A reconciler correction as its shard's settler applies it, decided without I/O: which stored
 * rows it changes and to what, applied only to the exact row state it was measured on.
 */
import { balanceRowKey, emptyRow, type BalanceRow, type BalanceRowKey } from './balances.js';
import { checkedAdd } from './money.js';

export interface CorrectionDelta {
  readonly userId: bigint;
  readonly assetId: number;
  readonly availableDelta: bigint;
  readonly lockedDelta: bigint;
  /** Stored version the delta was measured against (0: no row); a row that moved is skipped. */
  readonly version?: bigint | undefined;
  /**
   * Stored values the delta was measured against (0: no row); a row that holds other values
   * is skipped. A correction keeps the row's version, so only these tell a row an earlier
   * correction of the same mismatch already fixed from the row as measured.
   */
  readonly availableBefore?: bigint | undefined;
  readonly lockedBefore?: bigint | undefined;
}

export interface CorrectedRow {
  /** The row as stored when the correction was planned; absent rows as zeros, version 0. */
  readonly before: BalanceRow;
  readonly after: BalanceRow;
  /** The row did not exist in storage: it is written anew. */
  readonly recreated: boolean;
}

/**
 * New absolute values of the rows a reconciler correction changes. The delta is expected −
 * actual as the reconciler read the stored row, so it applies to the row as stored, which
 * `stored` must return (never a cached copy: a row changed behind the settler differs from its
 * cache, and that difference is what is being corrected).
 *
 * A stored row keeps its version: a correction is not a message of the shard's stream. A row
 * that does not exist (deleted behind the settler) is recreated with `recreatedVersion`, the
 * shard watermark: every message up to it is settled, so history up to that version explains
 * the corrected row. Throws DomainError (AMOUNT_OVERFLOW) when a value would leave the signed
 * 64-bit range; then nothing of the correction applies.
 */
export function planCorrection(
  deltas: readonly CorrectionDelta[],
  stored: (key: BalanceRowKey, userId: bigint, assetId: number) => BalanceRow | undefined,
  recreatedVersion: bigint,
): CorrectedRow[] {
  const byKey = new Map<BalanceRowKey, CorrectedRow>();
  for (const d of deltas) {
    const key = balanceRowKey(d.userId, d.assetId);
    const prior = byKey.get(key);
    let before: BalanceRow;
    let recreated: boolean;
    if (prior !== undefined) {
      before = prior.before;
      recreated = prior.recreated;
    } else {
      const row = stored(key, d.userId, d.assetId);
      // The row changed since the reconciler measured it (a settle job moved its version, or a
      // correction already changed its values): the delta would be wrong now.
      if (d.version !== undefined && (row?.version ?? 0n) !== d.version) continue;
      if (d.availableBefore !== undefined && (row?.available ?? 0n) !== d.availableBefore) continue;
      if (d.lockedBefore !== undefined && (row?.locked ?? 0n) !== d.lockedBefore) continue;
      recreated = row === undefined;
      before = row ?? emptyRow(d.userId, d.assetId);
    }
    const base = prior?.after ?? (recreated ? { ...before, version: recreatedVersion } : before);
    const after: BalanceRow = {
      ...base,
      available: checkedAdd(base.available, d.availableDelta, `corrected available of user ${d.userId} asset ${d.assetId}`),
      locked: checkedAdd(base.locked, d.lockedDelta, `corrected locked of user ${d.userId} asset ${d.assetId}`),
    };
    byKey.set(key, { before, after, recreated });
  }
  return [...byKey.values()];
}

function sameValues(a: BalanceRow, b: Pick<BalanceRow, 'available' | 'locked' | 'version'>): boolean {
  return a.available === b.available && a.locked === b.locked && a.version === b.version;
}

/**
 * The rows of an applied correction that storage does not show yet. A crash can leave the
 * correction's LOGGED BATCH partly visible (its record there, some rows not); the batchlog
 * replays the rest later at the old timestamp, where the next settlement batch would overwrite
 * it. A row still exactly as the correction found it (or still absent, for a recreated one)
 * gets its corrected value again; a row that shows the correction, or has moved on, is left.
 */
export function correctionRowsNotVisible(applied: readonly CorrectedRow[], stored: (key: BalanceRowKey, userId: bigint, assetId: number) => BalanceRow | undefined): BalanceRow[] {
  const out: BalanceRow[] = [];
  for (const c of applied) {
    const row = stored(balanceRowKey(c.after.userId, c.after.assetId), c.after.userId, c.after.assetId);
    const untouched = c.recreated ? row === undefined : row !== undefined && sameValues(row, c.before);
    if (untouched && !(row !== undefined && sameValues(row, c.after))) out.push(c.after);
  }
  return out;
}
