import { describe, expect, it } from 'vitest';
import { applyMessages, type BalanceRow } from './balances.js';
import { FUNDING_SHARD } from './catalog.js';
import { ConservationTally } from './conservation.js';
import type { FundingMessage, SettlementMessage, TradeMessage } from './messages.js';
import {
  BalanceRecompute,
  calculateBalanceFromTrades,
  confirmFindings,
  correctionRows,
  deadLetterFinding,
  findingKey,
  isBalanceError,
  sequenceGapFinding,
  tradeRowDeltas,
  type FundingHistoryRow,
  type ShardBalanceRow,
  type TradeHistoryRow,
} from './reconcile.js';

const FEE = 900n;

function trade(seq: bigint, buyer: bigint, seller: bigint, quantity: bigint, quoteAmount: bigint, extra: Partial<TradeMessage> = {}): TradeMessage {
  return {
    kind: 'trade', shard: 'btc_usdt', seq, tradeId: 1000n + seq, buyOrderId: 1n, sellOrderId: 2n, buyerUserId: buyer, sellerUserId: seller,
    price: 1n, quantity, quoteAmount, baseAsset: 1, quoteAsset: 2, buyerRefund: 0n, sellerRefund: 0n, buyerFee: 0n, sellerFee: 0n,
    matchSeq: seq, outputSequence: seq, settledAt: 1n, buyerQuoteVersion: 0n, buyerBaseVersion: 0n, sellerBaseVersion: 0n, sellerQuoteVersion: 0n,
    ...extra,
  };
}

function funding(seq: bigint, userId: bigint, eventType: FundingMessage['eventType'], amount: bigint, currency: number): FundingMessage {
  return { kind: 'funding', shard: FUNDING_SHARD, seq, userId, sequenceId: seq, eventType, amount, currency, relatedId: 0n, createdAt: 1n };
}

/** What the settler stores: rows from applyMessages per shard, and one history row per party. */
function settle(messages: readonly SettlementMessage[]): { rows: ShardBalanceRow[]; trades: TradeHistoryRow[]; fundings: FundingHistoryRow[] } {
  const byShard = new Map<string, SettlementMessage[]>();
  for (const m of messages) byShard.set(m.shard, [...(byShard.get(m.shard) ?? []), m]);
  const rows: ShardBalanceRow[] = [];
  for (const [shard, list] of byShard) {
    const changed = applyMessages(list, () => undefined, FEE);
    for (const r of changed.values()) rows.push({ ...(r as BalanceRow), shard });
  }
  const trades: TradeHistoryRow[] = [];
  const fundings: FundingHistoryRow[] = [];
  for (const m of messages) {
    if (m.kind === 'funding') {
      fundings.push({ userId: m.userId, seq: m.seq, eventType: m.eventType, amount: m.amount, currency: m.currency });
      continue;
    }
    const base = { ...m, symbol: m.shard };
    trades.push({ ...base, userId: m.buyerUserId, side: 'buyer' }, { ...base, userId: m.sellerUserId, side: 'seller' });
    if (m.buyerFee > 0n || m.sellerFee > 0n) trades.push({ ...base, userId: FEE, side: 'fee' });
  }
  return { rows, trades, fundings };
}

function check(userId: bigint, settled: ReturnType<typeof settle>, rows = settled.rows) {
  return calculateBalanceFromTrades(
    userId,
    rows.filter((r) => r.userId === userId),
    settled.trades.filter((t) => t.userId === userId),
    settled.fundings.filter((f) => f.userId === userId),
    FEE,
  );
}

const STREAM: SettlementMessage[] = [
  funding(1n, 1n, 'DEPOSIT', 1_000_000n, 2),
  funding(2n, 1n, 'LOCK', 600_000n, 2),
  funding(3n, 2n, 'DEPOSIT', 51n, 1),
  funding(4n, 2n, 'LOCK', 51n, 1),
  // Buyer 1 pays 500 000 quote (+ 100 000 refund) for 40 base; fees go to the fee account.
  trade(10n, 1n, 2n, 40n, 500_000n, { buyerRefund: 100_000n, sellerRefund: 10n, buyerFee: 1n, sellerFee: 500n }),
  funding(5n, 2n, 'LOCK', 1n, 2),
  // A self-trade of user 2 (two history rows in one partition).
  trade(12n, 2n, 2n, 1n, 1n),
  funding(6n, FEE, 'DEPOSIT', 7n, 1),
  funding(7n, FEE, 'LOCK', 7n, 1),
  funding(8n, 1n, 'LOCK', 70n, 2),
  // The fee account trades too: its seller row and its fee rows are told apart by side.
  trade(13n, 1n, FEE, 7n, 70n),
  funding(9n, 1n, 'WITHDRAWAL', 1n, 2),
];

describe('calculateBalanceFromTrades', () => {
  const settled = settle(STREAM);

  it('agrees with the settler rules: no findings for any user of a settled stream', () => {
    for (const user of [1n, 2n, FEE]) {
      const result = check(user, settled);
      expect(result.findings, `user ${user}`).toEqual([]);
      expect(result.rowsChecked).toBe(settled.rows.filter((r) => r.userId === user).length);
    }
  });

  it('finds a changed row and names expected and actual values', () => {
    const rows = settled.rows.map((r) => (r.userId === 1n && r.assetId === 2 && r.shard === 'btc_usdt' ? { ...r, available: r.available + 5n } : r));
    const result = check(1n, settled, rows);
    expect(result.findings).toHaveLength(1);
    const f = result.findings[0]!;
    expect(f).toMatchObject({ kind: 'balance_mismatch', userId: 1n, assetId: 2, shard: 'btc_usdt', expectedAvailable: 100_000n, actualAvailable: 100_005n, expectedLocked: -600_070n, actualLocked: -600_070n });
    expect(f.message).toContain('stored available 100005');
    expect(f.version).toBeGreaterThan(0n);
    // The correction carries the row state it was measured against (version and values), so a
    // row that moved, or that an earlier correction already fixed, is skipped.
    expect(correctionRows(result.findings)).toEqual([
      { userId: 1n, assetId: 2, availableDelta: -5n, lockedDelta: 0n, version: f.version, availableBefore: 100_005n, lockedBefore: -600_070n },
    ]);
  });

  it('finds a deleted row as missing, with the correction that recreates it', () => {
    const rows = settled.rows.filter((r) => !(r.userId === 2n && r.assetId === 1 && r.shard === FUNDING_SHARD));
    const result = check(2n, settled, rows);
    const kinds = result.findings.map((f) => f.kind).sort();
    // The funding row held the user's 51 locked base: without it the summed locked is negative.
    expect(kinds).toEqual(['missing_row', 'negative_balance']);
    const missing = result.findings.find((f) => f.kind === 'missing_row')!;
    expect(missing).toMatchObject({ userId: 2n, assetId: 1, shard: 'funding', expectedAvailable: 0n, expectedLocked: 51n });
    expect(correctionRows(result.findings)).toEqual([{ userId: 2n, assetId: 1, availableDelta: 0n, lockedDelta: 51n, version: 0n, availableBefore: 0n, lockedBefore: 0n }]);
  });

  it('finds a stored row that no history explains', () => {
    const rows = [...settled.rows, { userId: 1n, assetId: 3, shard: 'eth_usdt', available: 9n, locked: 0n, version: 4n }];
    const result = check(1n, settled, rows);
    expect(result.findings).toEqual([expect.objectContaining({ kind: 'balance_mismatch', assetId: 3, shard: 'eth_usdt', expectedAvailable: 0n, actualAvailable: 9n })]);
  });

  it('ignores history written after the row was read (seq above the row version)', () => {
    // The row as it was before trade 13 (version 10), while trade 13's history is already visible.
    const early = settle(STREAM.filter((m) => !(m.kind === 'trade' && m.seq === 13n)));
    const rowsBefore = early.rows.filter((r) => r.userId === 1n);
    const result = calculateBalanceFromTrades(1n, rowsBefore, settled.trades.filter((t) => t.userId === 1n), settled.fundings.filter((f) => f.userId === 1n), FEE);
    expect(result.findings).toEqual([]);
  });

  it('reports a row whose version is below history it must have applied', () => {
    const rows = settled.rows.map((r) => (r.userId === 1n && r.shard === 'btc_usdt' && r.assetId === 1 ? { ...r, version: 5n } : r));
    const result = check(1n, settled, rows);
    expect(result.findings.map((f) => f.kind)).toEqual(['balance_mismatch']);
    expect(result.findings[0]!.expectedAvailable).toBe(0n);
  });

  it('reports negative balances summed over shards, not per row', () => {
    // User 2's btc_usdt base row is negative locked (the lock is in the funding shard): no finding.
    expect(settled.rows.some((r) => r.userId === 2n && r.locked < 0n)).toBe(true);
    const rows: ShardBalanceRow[] = [
      { userId: 5n, assetId: 2, shard: 'funding', available: 10n, locked: 0n, version: 1n },
      { userId: 5n, assetId: 2, shard: 'btc_usdt', available: -11n, locked: 0n, version: 2n },
    ];
    const result = new BalanceRecompute(5n, rows, FEE).result();
    expect(result.findings.filter((f) => f.kind === 'negative_balance')).toEqual([
      expect.objectContaining({ userId: 5n, assetId: 2, actualAvailable: -1n, actualLocked: 0n }),
    ]);
  });

  it('reports history rows it cannot use, naming the field', () => {
    const bad: TradeHistoryRow = { ...settled.trades[0]!, side: 'maker' };
    const result = calculateBalanceFromTrades(bad.userId, [], [bad], [{ userId: bad.userId, seq: 1n, eventType: 'REFUND', amount: 1n, currency: 2 }], FEE);
    expect(result.findings.filter((f) => f.kind === 'invalid_history')).toHaveLength(1);
    expect(result.findings[0]!.message).toMatch(/side "maker" is not buyer, seller or fee/);
    const wrongUser = tradeRowDeltas({ ...settled.trades[0]!, userId: 77n }, FEE);
    expect(wrongUser).toEqual({ ok: false, reason: expect.stringMatching(/the buyer is user 1, but the row is in user 77's history/) });
  });
});

describe('confirmFindings', () => {
  it('keeps only findings seen in both reads, with the second read values', () => {
    const a = { kind: 'balance_mismatch' as const, userId: 1n, assetId: 2, shard: 'funding', actualAvailable: 1n, message: 'a' };
    const b = { kind: 'missing_row' as const, userId: 1n, assetId: 3, shard: 'funding', message: 'b' };
    const a2 = { ...a, actualAvailable: 2n };
    expect(confirmFindings([a, b], [a2])).toEqual([a2]);
    expect(confirmFindings([b], [a2])).toEqual([]);
    expect(findingKey(a)).toBe('balance_mismatch|1|2|funding');
  });
});

describe('ConservationTally', () => {
  it('holds for a settled stream and names the asset and the difference when broken', () => {
    const settled = settle(STREAM);
    const tally = new ConservationTally();
    tally.addBalanceRows(settled.rows);
    for (const f of settled.fundings) tally.addFundingEvent(f);
    expect(tally.findings()).toEqual([]);
    expect(tally.assets()).toEqual([
      { assetId: 1, available: 58n, locked: 0n, expected: 58n, ok: true },
      { assetId: 2, available: 999_999n, locked: 0n, expected: 999_999n, ok: true },
    ]);

    tally.addBalanceRows([{ assetId: 2, available: 0n, locked: 3n }]);
    const findings = tally.findings();
    expect(findings).toEqual([expect.objectContaining({ kind: 'conservation', assetId: 2, expectedAvailable: 999_999n, actualLocked: 3n })]);
    expect(findings[0]!.message).toContain('difference 3');
  });
});

describe('system findings', () => {
  it('summarises gaps and dead letters per shard, as warnings', () => {
    const gap = sequenceGapFinding('btc_usdt', [{ fromSeq: 5n, toSeq: 7n }, { fromSeq: 9n, toSeq: 9n }], 1000)!;
    expect(gap.message).toBe('shard btc_usdt: 2 recorded sequence gaps (5-7, 9)');
    expect(isBalanceError(gap.kind)).toBe(false);
    expect(sequenceGapFinding('btc_usdt', [], 1000)).toBeUndefined();
    const dead = deadLetterFinding('funding', [{ reason: 'Invalid funding event: amount: must be positive', seq: 3n }], 1)!;
    expect(dead.message).toBe('shard funding: at least 1 dead letters; newest (seq 3): Invalid funding event: amount: must be positive');
    expect(isBalanceError('balance_mismatch')).toBe(true);
  });
});
