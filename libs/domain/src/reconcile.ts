/**
 * Reconciliation rules: recompute a user's balance rows from their settled history and compare
 * them with the stored rows; tally conservation per asset; classify findings. Pure: the reads
 * happen in libs/scylla, the orchestration in apps/reconciler.
 *
 * A stored row (user, asset, shard) carries `version`, the shard sequence of the last message
 * applied to it. Its expected value is the sum of the user's history deltas for that asset and
 * shard with seq ≤ version: history written after the row was read is ignored, so a check that
 * runs while the settler writes does not see a false difference.
 */
import { FUNDING_SHARD } from './catalog.js';
import { fundingEffects, tradeEffects, type BalanceDelta, type Party, type TradeEffectInput } from './effects.js';
import { FundingEventType } from './messages.js';

export const ReconcileFindingKind = {
  /** A stored row differs from its history up to its version. */
  BALANCE_MISMATCH: 'balance_mismatch',
  /** History has deltas for an (asset, shard) row that is not stored. */
  MISSING_ROW: 'missing_row',
  /** A user's summed available or locked balance of an asset is below zero. */
  NEGATIVE_BALANCE: 'negative_balance',
  /** A history row cannot be interpreted (unknown side or event, party that is not the row's user). */
  INVALID_HISTORY: 'invalid_history',
  /** Sum of all balances of an asset ≠ deposits − withdrawals. */
  CONSERVATION: 'conservation',
  /** A recorded hole in a shard's sequence (a possible loss). */
  SEQUENCE_GAP: 'sequence_gap',
  /** Messages kept in the dead letter table of a shard. */
  DEAD_LETTER: 'dead_letter',
} as const;
export type ReconcileFindingKind = (typeof ReconcileFindingKind)[keyof typeof ReconcileFindingKind];

/**
 * Kinds that say a balance is wrong. Sequence gaps and dead letters are reported too, but as
 * warnings: they are kept on purpose and are not a balance that disagrees with its history.
 */
const ERROR_KINDS: ReadonlySet<ReconcileFindingKind> = new Set([
  ReconcileFindingKind.BALANCE_MISMATCH,
  ReconcileFindingKind.MISSING_ROW,
  ReconcileFindingKind.NEGATIVE_BALANCE,
  ReconcileFindingKind.INVALID_HISTORY,
  ReconcileFindingKind.CONSERVATION,
]);

export function isBalanceError(kind: ReconcileFindingKind): boolean {
  return ERROR_KINDS.has(kind);
}

/** Findings a correction (expected − actual on the row) can repair. */
export function isFixable(finding: ReconcileFinding): boolean {
  return (
    (finding.kind === ReconcileFindingKind.BALANCE_MISMATCH || finding.kind === ReconcileFindingKind.MISSING_ROW) &&
    finding.userId !== undefined &&
    finding.assetId !== undefined &&
    finding.shard !== undefined &&
    finding.expectedAvailable !== undefined &&
    finding.expectedLocked !== undefined
  );
}

export interface ReconcileFinding {
  readonly kind: ReconcileFindingKind;
  /** Absent for findings about the whole system (conservation, gaps, dead letters). */
  readonly userId?: bigint | undefined;
  readonly assetId?: number | undefined;
  /** Absent for per-user or per-asset totals summed over shards. */
  readonly shard?: string | undefined;
  /** For conservation: deposits − withdrawals of the asset. Minor units. */
  readonly expectedAvailable?: bigint | undefined;
  readonly expectedLocked?: bigint | undefined;
  /** For conservation: the sums over every account of the asset. Minor units. */
  readonly actualAvailable?: bigint | undefined;
  readonly actualLocked?: bigint | undefined;
  /** The stored row's version, for row findings. */
  readonly version?: bigint | undefined;
  /** What is wrong, in a sentence. */
  readonly message: string;
}

/** Identity of a finding: the same key in two reads is the same problem. */
export function findingKey(f: Pick<ReconcileFinding, 'kind' | 'userId' | 'assetId' | 'shard'>): string {
  return `${f.kind}|${f.userId ?? '-'}|${f.assetId ?? '-'}|${f.shard ?? '-'}`;
}

/**
 * Findings of a second read that were also present in the first. A batch is atomic but not
 * isolated: a read can see part of it, so a difference counts only when it is still there
 * after a re-read. The second read's values are kept (they are the newer ones).
 */
export function confirmFindings(first: readonly ReconcileFinding[], second: readonly ReconcileFinding[]): ReconcileFinding[] {
  const seen = new Set(first.map(findingKey));
  return second.filter((f) => seen.has(findingKey(f)));
}

/** One stored contribution row of user_balances. */
export interface ShardBalanceRow {
  readonly userId: bigint;
  readonly assetId: number;
  readonly shard: string;
  readonly available: bigint;
  readonly locked: bigint;
  /** Shard sequence of the last message applied to the row. */
  readonly version: bigint;
}

export const TradeSide = { BUYER: 'buyer', SELLER: 'seller', FEE: 'fee' } as const;
export type TradeSide = (typeof TradeSide)[keyof typeof TradeSide];

/** One row of trades_by_user: a trade as seen by one of its parties (what its effects need). */
export interface TradeHistoryRow extends TradeEffectInput {
  /** The partition: the user whose history this is. */
  readonly userId: bigint;
  readonly symbol: string;
  readonly seq: bigint;
  /** buyer, seller or fee (the fee account's row); anything else is invalid history. */
  readonly side: string;
  readonly tradeId: bigint;
}

/** One row of ledger_events_by_user. */
export interface FundingHistoryRow {
  readonly userId: bigint;
  /** Funding shard sequence. */
  readonly seq: bigint;
  readonly eventType: string;
  readonly amount: bigint;
  readonly currency: number;
}

/** A change of one of the user's (asset, shard) rows at a shard sequence. */
export interface HistoryDelta {
  readonly shard: string;
  readonly seq: bigint;
  readonly assetId: number;
  readonly available: bigint;
  readonly locked: bigint;
}

/** Either the deltas of a history row for its user, or why the row cannot be used. */
export type HistoryDeltas = { readonly ok: true; readonly deltas: HistoryDelta[] } | { readonly ok: false; readonly reason: string };

const SIDE_PARTY: Readonly<Record<TradeSide, Party>> = { buyer: 'buyer', seller: 'seller', fee: 'fee' };

/**
 * The deltas a trade made to the row owner's balances, for the party this row records. The
 * effects are those the settler applied (tradeEffects); only this party's deltas are kept,
 * since the other parties have their own rows in their own partitions.
 */
export function tradeRowDeltas(row: TradeHistoryRow, feeAccountUserId: bigint): HistoryDeltas {
  const side = row.side as TradeSide;
  const party = SIDE_PARTY[side];
  if (party === undefined) return { ok: false, reason: `trade ${row.tradeId} seq ${row.seq}: side ${JSON.stringify(row.side)} is not buyer, seller or fee` };
  const partyUser = side === 'buyer' ? row.buyerUserId : side === 'seller' ? row.sellerUserId : feeAccountUserId;
  if (partyUser !== row.userId) {
    return { ok: false, reason: `trade ${row.tradeId} seq ${row.seq}: the ${side} is user ${partyUser}, but the row is in user ${row.userId}'s history` };
  }
  const effects = tradeEffects(row, feeAccountUserId).filter((d) => d.party === party);
  if (effects.length === 0) return { ok: false, reason: `trade ${row.tradeId} seq ${row.seq}: a fee row but both fees are 0` };
  return { ok: true, deltas: effects.map((d) => toHistoryDelta(d, row.symbol, row.seq)) };
}

/** The funding event types the history may hold (anything else is invalid history). */
export const FUNDING_EVENT_TYPES: ReadonlySet<string> = new Set(Object.values(FundingEventType));

export function fundingRowDeltas(row: FundingHistoryRow): HistoryDeltas {
  if (!FUNDING_EVENT_TYPES.has(row.eventType)) {
    return { ok: false, reason: `funding event seq ${row.seq}: event_type ${JSON.stringify(row.eventType)} is not one of ${[...FUNDING_EVENT_TYPES].join(', ')}` };
  }
  const effects = fundingEffects({ userId: row.userId, eventType: row.eventType as FundingEventType, amount: row.amount, currency: row.currency });
  return { ok: true, deltas: effects.map((d) => toHistoryDelta(d, FUNDING_SHARD, row.seq)) };
}

function toHistoryDelta(d: BalanceDelta, shard: string, seq: bigint): HistoryDelta {
  return { shard, seq, assetId: d.assetId, available: d.available, locked: d.locked };
}

interface RowTally {
  readonly assetId: number;
  readonly shard: string;
  readonly stored: ShardBalanceRow | undefined;
  /** Sum of the deltas with seq ≤ stored.version (all deltas when there is no stored row). */
  available: bigint;
  locked: bigint;
  /** Deltas seen past the stored version: written after the row was read. */
  laterDeltas: number;
}

function rowKey(assetId: number, shard: string): string {
  return `${assetId}/${shard}`;
}

/** Result of checking one user. */
export interface UserCheck {
  readonly userId: bigint;
  readonly findings: ReconcileFinding[];
  /** Stored rows compared, plus rows history says are missing. */
  readonly rowsChecked: number;
  /** Expected value of every row (stored or missing), for reports and corrections. */
  readonly expected: ReadonlyArray<{ assetId: number; shard: string; available: bigint; locked: bigint }>;
}

/**
 * calculate_balance_from_trades, as a fold: give it the user's stored rows, then every history
 * row (in any order, as they are paged in), then ask for the result. Memory is one tally per
 * (asset, shard), whatever the length of the history. Sums are exact (bigint); nothing computed
 * here is written back except through a validated correction job.
 */
export class BalanceRecompute {
  private readonly rows = new Map<string, RowTally>();
  private readonly invalid: ReconcileFinding[] = [];

  constructor(
    readonly userId: bigint,
    private readonly storedRows: readonly ShardBalanceRow[],
    private readonly feeAccountUserId: bigint,
  ) {
    for (const stored of storedRows) {
      this.rows.set(rowKey(stored.assetId, stored.shard), { assetId: stored.assetId, shard: stored.shard, stored, available: 0n, locked: 0n, laterDeltas: 0 });
    }
  }

  addTrade(row: TradeHistoryRow): void {
    this.addDeltas(tradeRowDeltas(row, this.feeAccountUserId));
  }

  addFunding(row: FundingHistoryRow): void {
    this.addDeltas(fundingRowDeltas(row));
  }

  private addDeltas(result: HistoryDeltas): void {
    if (!result.ok) {
      // One finding per user and kind is kept (the key has no sequence); the first reason names the row.
      if (this.invalid.length === 0) {
        this.invalid.push({ kind: ReconcileFindingKind.INVALID_HISTORY, userId: this.userId, message: `user ${this.userId}: ${result.reason}` });
      }
      return;
    }
    for (const delta of result.deltas) {
      const key = rowKey(delta.assetId, delta.shard);
      let tally = this.rows.get(key);
      if (tally === undefined) {
        tally = { assetId: delta.assetId, shard: delta.shard, stored: undefined, available: 0n, locked: 0n, laterDeltas: 0 };
        this.rows.set(key, tally);
      }
      if (tally.stored !== undefined && delta.seq > tally.stored.version) {
        tally.laterDeltas += 1;
        continue;
      }
      tally.available += delta.available;
      tally.locked += delta.locked;
    }
  }

  result(): UserCheck {
    const findings: ReconcileFinding[] = [...this.invalid];
    const expected: UserCheck['expected'][number][] = [];
    for (const tally of this.rows.values()) {
      expected.push({ assetId: tally.assetId, shard: tally.shard, available: tally.available, locked: tally.locked });
      const where = `user ${this.userId} asset ${tally.assetId} shard ${tally.shard}`;
      if (tally.stored === undefined) {
        findings.push({
          kind: ReconcileFindingKind.MISSING_ROW,
          userId: this.userId,
          assetId: tally.assetId,
          shard: tally.shard,
          expectedAvailable: tally.available,
          expectedLocked: tally.locked,
          message: `${where}: history has deltas (available ${tally.available}, locked ${tally.locked}) but no balance row is stored`,
        });
        continue;
      }
      const s = tally.stored;
      if (s.available !== tally.available || s.locked !== tally.locked) {
        findings.push({
          kind: ReconcileFindingKind.BALANCE_MISMATCH,
          userId: this.userId,
          assetId: tally.assetId,
          shard: tally.shard,
          expectedAvailable: tally.available,
          expectedLocked: tally.locked,
          actualAvailable: s.available,
          actualLocked: s.locked,
          version: s.version,
          message: `${where}: stored available ${s.available} locked ${s.locked} at version ${s.version}, history up to that version gives available ${tally.available} locked ${tally.locked}`,
        });
      }
    }
    findings.push(...negativeBalanceFindings(this.userId, this.storedRows));
    return { userId: this.userId, findings, rowsChecked: this.rows.size, expected };
  }
}

/** calculate_balance_from_trades over whole arrays (tests, small users). */
export function calculateBalanceFromTrades(
  userId: bigint,
  storedRows: readonly ShardBalanceRow[],
  trades: readonly TradeHistoryRow[],
  fundingEvents: readonly FundingHistoryRow[],
  feeAccountUserId: bigint,
): UserCheck {
  const recompute = new BalanceRecompute(userId, storedRows, feeAccountUserId);
  for (const t of trades) recompute.addTrade(t);
  for (const f of fundingEvents) recompute.addFunding(f);
  return recompute.result();
}

/** A user's summed balance of an asset below zero (every mode reports this for the users it checks). */
export function negativeBalanceFindings(userId: bigint, rows: readonly ShardBalanceRow[]): ReconcileFinding[] {
  const byAsset = new Map<number, { available: bigint; locked: bigint }>();
  for (const row of rows) {
    const sum = byAsset.get(row.assetId) ?? { available: 0n, locked: 0n };
    byAsset.set(row.assetId, { available: sum.available + row.available, locked: sum.locked + row.locked });
  }
  const findings: ReconcileFinding[] = [];
  for (const [assetId, sum] of byAsset) {
    if (sum.available < 0n || sum.locked < 0n) {
      findings.push({
        kind: ReconcileFindingKind.NEGATIVE_BALANCE,
        userId,
        assetId,
        actualAvailable: sum.available,
        actualLocked: sum.locked,
        message: `user ${userId} asset ${assetId}: balance is negative (available ${sum.available}, locked ${sum.locked})`,
      });
    }
  }
  return findings;
}

/** A recorded sequence gap as a finding (one per shard: the key has no sequence). */
export function sequenceGapFinding(shard: string, gaps: ReadonlyArray<{ fromSeq: bigint; toSeq: bigint }>, listedMax: number): ReconcileFinding | undefined {
  if (gaps.length === 0) return undefined;
  const shown = gaps.slice(0, 10).map((g) => (g.fromSeq === g.toSeq ? `${g.fromSeq}` : `${g.fromSeq}-${g.toSeq}`));
  const count = gaps.length >= listedMax ? `at least ${gaps.length}` : `${gaps.length}`;
  return {
    kind: ReconcileFindingKind.SEQUENCE_GAP,
    shard,
    message: `shard ${shard}: ${count} recorded sequence gaps (${shown.join(', ')}${gaps.length > shown.length ? ', …' : ''})`,
  };
}

export function deadLetterFinding(shard: string, letters: ReadonlyArray<{ reason: string; seq?: bigint | undefined }>, listedMax: number): ReconcileFinding | undefined {
  if (letters.length === 0) return undefined;
  const count = letters.length >= listedMax ? `at least ${letters.length}` : `${letters.length}`;
  const newest = letters[0]!;
  return {
    kind: ReconcileFindingKind.DEAD_LETTER,
    shard,
    message: `shard ${shard}: ${count} dead letters; newest${newest.seq === undefined ? '' : ` (seq ${newest.seq})`}: ${newest.reason}`,
  };
}

/** Correction rows for fixable findings of one shard: expected − actual per row. */
export function correctionRows(
  findings: readonly ReconcileFinding[],
): Array<{ userId: bigint; assetId: number; availableDelta: bigint; lockedDelta: bigint; version: bigint; availableBefore: bigint; lockedBefore: bigint }> {
  return findings.filter(isFixable).map((f) => ({
    userId: f.userId!,
    assetId: f.assetId!,
    availableDelta: f.expectedAvailable! - (f.actualAvailable ?? 0n),
    lockedDelta: f.expectedLocked! - (f.actualLocked ?? 0n),
    // The settler applies the delta only to the row as it was measured: same version, same
    // values (a correction keeps the version, so a row already corrected differs only there).
    version: f.version ?? 0n,
    availableBefore: f.actualAvailable ?? 0n,
    lockedBefore: f.actualLocked ?? 0n,
  }));
}
