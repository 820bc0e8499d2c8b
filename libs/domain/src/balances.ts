/**
 * Balance contribution rows: each shard owns one row per (user, asset) and is its only writer.
 * A row holds absolute values and the shard sequence of the last message applied to it, so
 * applying a message twice is a no-op even when an earlier batch is only partly visible.
 */
import type { BalanceDelta } from './effects.js';
import { messageEffects } from './effects.js';
import type { SettlementMessage } from './messages.js';
import { I64_MAX, I64_MIN, assertI64 } from './money.js';

export interface BalanceRow {
  readonly userId: bigint;
  readonly assetId: number;
  readonly available: bigint;
  readonly locked: bigint;
  /** Shard sequence of the last message applied to this row; 0 for a new row. */
  readonly version: bigint;
}

export type BalanceRowKey = string;

export function balanceRowKey(userId: bigint, assetId: number): BalanceRowKey {
  return `${userId}/${assetId}`;
}

export function emptyRow(userId: bigint, assetId: number): BalanceRow {
  return { userId, assetId, available: 0n, locked: 0n, version: 0n };
}

/** Applies one delta at `seq`, unless the row already carries that sequence. */
export function applyDelta(row: BalanceRow, delta: BalanceDelta, seq: bigint): BalanceRow {
  if (row.version >= seq) return row;
  const available = row.available + delta.available;
  const locked = row.locked + delta.locked;
  // The message naming the row is only built when the check fails: this runs for every delta.
  if (available < I64_MIN || available > I64_MAX) assertI64(available, `available of user ${row.userId} asset ${row.assetId}`);
  if (locked < I64_MIN || locked > I64_MAX) assertI64(locked, `locked of user ${row.userId} asset ${row.assetId}`);
  return { userId: row.userId, assetId: row.assetId, available, locked, version: seq };
}

/**
 * The rows one message changes, each as it is after the message; rows that already carry the
 * message's sequence are left out. The settle plan applies every message through this. A
 * self-trade touches the same row twice in one message: its deltas are netted first, because
 * the version check is per message, not per delta. Throws DomainError when a result leaves
 * the signed 64-bit range.
 */
export function applyMessage(
  message: SettlementMessage,
  lookup: (key: BalanceRowKey, userId: bigint, assetId: number) => BalanceRow,
  feeAccountUserId: bigint,
): BalanceRow[] {
  const after: BalanceRow[] = [];
  for (const [key, delta] of netDeltasByRow(messageEffects(message, feeAccountUserId))) {
    const before = lookup(key, delta.userId, delta.assetId);
    const next = applyDelta(before, delta, message.seq);
    if (next !== before) after.push(next);
  }
  return after;
}

/**
 * Applies messages (in shard order) to the rows they touch, coalesced: the result holds the
 * final value of every row that changed. `current` returns the row as stored (or cached).
 */
export function applyMessages(
  messages: readonly SettlementMessage[],
  current: (key: BalanceRowKey, userId: bigint, assetId: number) => BalanceRow | undefined,
  feeAccountUserId: bigint,
): Map<BalanceRowKey, BalanceRow> {
  const changed = new Map<BalanceRowKey, BalanceRow>();
  const lookup = (key: BalanceRowKey, userId: bigint, assetId: number): BalanceRow => changed.get(key) ?? current(key, userId, assetId) ?? emptyRow(userId, assetId);
  for (const message of messages) {
    for (const row of applyMessage(message, lookup, feeAccountUserId)) changed.set(balanceRowKey(row.userId, row.assetId), row);
  }
  return changed;
}

/** Sums the deltas of one message per balance row. */
export function netDeltasByRow(deltas: readonly BalanceDelta[]): Map<BalanceRowKey, BalanceDelta> {
  const byRow = new Map<BalanceRowKey, BalanceDelta>();
  for (const delta of deltas) {
    const key = balanceRowKey(delta.userId, delta.assetId);
    const prior = byRow.get(key);
    byRow.set(
      key,
      prior === undefined
        ? delta
        : { ...prior, available: prior.available + delta.available, locked: prior.locked + delta.locked },
    );
  }
  return byRow;
}

/** Sums a user's contribution rows per asset: the balance a user sees. */
export function sumRows(rows: readonly BalanceRow[]): Map<number, { available: bigint; locked: bigint }> {
  const byAsset = new Map<number, { available: bigint; locked: bigint }>();
  for (const row of rows) {
    const sum = byAsset.get(row.assetId) ?? { available: 0n, locked: 0n };
    byAsset.set(row.assetId, { available: sum.available + row.available, locked: sum.locked + row.locked });
  }
  return byAsset;
}
