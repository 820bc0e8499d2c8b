import { describe, expect, it } from 'vitest';
import { balanceRowKey, type BalanceRow } from './balances.js';
import { FUNDING_SHARD } from './catalog.js';
import { tradeEffects } from './effects.js';
import { I64_MAX } from './money.js';
import type { FundingMessage, SettlementMessage, TradeMessage } from './messages.js';
import { correctionRowsNotVisible, planCorrection } from './correction-plan.js';
import { BATCH_BYTES_MIN, planSettlement, shrinkBatchBytes, touchedRowKeys, tradeRowStatements, fundingRowStatements, STATEMENT_BYTES, type SettlePlanInput } from './settle-plan.js';
import { testCatalog } from './test-catalog.js';

const FEE = 99n;
const catalog = testCatalog(FEE);
const btcUsdt = catalog.market('btc_usdt');

function trade(seq: bigint, overrides: Partial<TradeMessage> = {}): TradeMessage {
  return {
    kind: 'trade', shard: 'btc_usdt', seq, tradeId: 1000n + seq, buyOrderId: 1n, sellOrderId: 2n,
    buyerUserId: 10n, sellerUserId: 11n, price: 60_000n, quantity: 100_000_000n, quoteAmount: 60_000n,
    baseAsset: 1, quoteAsset: 2, buyerRefund: 7n, sellerRefund: 3n, buyerFee: 0n, sellerFee: 0n,
    matchSeq: seq, outputSequence: seq, settledAt: 0n, buyerQuoteVersion: 0n, buyerBaseVersion: 0n, sellerBaseVersion: 0n, sellerQuoteVersion: 0n,
    ...overrides,
  };
}

function deposit(seq: bigint, userId: bigint, amount: bigint, currency = 1): FundingMessage {
  return { kind: 'funding', shard: FUNDING_SHARD, seq, userId, sequenceId: seq, eventType: 'DEPOSIT', amount, currency, relatedId: 0n, createdAt: 0n };
}

function input(messages: SettlementMessage[], overrides: Partial<SettlePlanInput> = {}): SettlePlanInput {
  const shard = messages[0]?.shard ?? 'btc_usdt';
  return {
    shard,
    market: catalog.markets.get(shard),
    assetIds: new Set(catalog.assets.keys()),
    feeAccountUserId: FEE,
    afterSeq: 0n,
    messages,
    settledTradeSeqs: new Map(),
    current: () => undefined,
    batchStatementsMax: 600,
    ...overrides,
  };
}

/** Sum of a plan's final rows, by (user, asset). */
function finalRows(plan: ReturnType<typeof planSettlement>): Map<string, BalanceRow> {
  const rows = new Map<string, BalanceRow>();
  for (const chunk of plan.chunks) for (const row of chunk.rows) rows.set(balanceRowKey(row.userId, row.assetId), row);
  return rows;
}

describe('planSettlement', () => {
  it('coalesces every effect of a job per row, with the version of the last message that touched it', () => {
    const plan = planSettlement(input([trade(5n), trade(8n), trade(9n, { buyerUserId: 12n })]));
    expect(plan.chunks).toHaveLength(1);
    const rows = finalRows(plan);
    expect(rows.get('10/2')).toEqual({ userId: 10n, assetId: 2, available: 14n, locked: -120_014n, version: 8n });
    expect(rows.get('11/1')?.version).toBe(9n);
    expect(rows.size).toBe(6);
    // 3 trades × (trade row + 2 history rows + 2 bucket index rows) + 6 rows + watermark.
    expect(plan.chunks[0]!.statementCount).toBe(15 + 6 + 1);
    expect(plan.chunks[0]!.lastSeq).toBe(9n);
  });

  it('applies a trade whose row is stored under the same sequence to the rows that lack it (a partly visible batch)', () => {
    // The trade row and the seller's base row of batch seq 5 are visible; the buyer's quote row
    // is not yet (the batchlog replays it later, at the old timestamp, and would lose).
    const sellerBase: BalanceRow = { userId: 11n, assetId: 1, available: 3n, locked: -100_000_003n, version: 5n };
    const plan = planSettlement(input([trade(5n)], { settledTradeSeqs: new Map([[1005n, 5n]]), current: (key) => (key === '11/1' ? sellerBase : undefined) }));
    const rows = finalRows(plan);
    expect(rows.has('11/1')).toBe(false);
    expect(rows.get('10/2')).toEqual({ userId: 10n, assetId: 2, available: 7n, locked: -60_007n, version: 5n });
    expect(plan).toMatchObject({ applied: 0, alreadySettled: 1, deadLettered: 0 });
  });

  it('starts from the current rows and skips rows that already carry the sequence', () => {
    const current: BalanceRow = { userId: 10n, assetId: 2, available: 1_000n, locked: 60_007n, version: 4n };
    const already: BalanceRow = { userId: 11n, assetId: 1, available: 5n, locked: 0n, version: 5n };
    const plan = planSettlement(input([trade(5n)], { current: (key) => (key === '10/2' ? current : key === '11/1' ? already : undefined) }));
    const rows = finalRows(plan);
    expect(rows.get('10/2')).toEqual({ userId: 10n, assetId: 2, available: 1_007n, locked: 0n, version: 5n });
    expect(rows.has('11/1')).toBe(false);
  });

  it('splits a job into batches within the statement limit, each row carrying its value as of its batch', () => {
    const messages = Array.from({ length: 40 }, (_, i) => trade(BigInt(i + 1), { buyerFee: i % 2 === 0 ? 10n : 0n, sellerUserId: 100n + BigInt(i) }));
    const plan = planSettlement(input(messages, { batchStatementsMax: 50 }));
    expect(plan.chunks.length).toBeGreaterThan(3);
    for (const chunk of plan.chunks) {
      expect(chunk.statementCount).toBeLessThanOrEqual(50);
      const own = chunk.trades.reduce((n, t) => n + tradeRowStatements(t), 0);
      expect(chunk.statementCount).toBe(own + chunk.rows.length + 1);
    }
    expect(plan.chunks.map((c) => c.lastSeq)).toEqual([...plan.chunks.map((c) => c.trades.at(-1)!.seq)]);
    // The buyer's quote row ends at the sum of all 40 trades, whatever the cut.
    const buyerQuote = finalRows(plan).get('10/2')!;
    expect(buyerQuote.available).toBe(7n * 40n);
    expect(plan.applied).toBe(40);
  });

  it('never splits one message, even above the limit', () => {
    const plan = planSettlement(input([trade(1n, { buyerFee: 1n, sellerFee: 1n }), trade(2n)], { batchStatementsMax: 8 }));
    expect(plan.chunks.map((c) => c.trades.length)).toEqual([1, 1]);
    expect(plan.chunks[0]!.statementCount).toBe(7 + 6 + 1);
  });

  it('counts the pre-bucket history rows too while the history is written twice (dualHistory)', () => {
    const trades = [trade(1n, { buyerFee: 1n, sellerFee: 1n }), trade(2n)];
    expect(tradeRowStatements(trades[0]!)).toBe(7);
    expect(tradeRowStatements(trades[0]!, true)).toBe(10);
    expect(tradeRowStatements(trades[1]!, true)).toBe(7);
    expect(fundingRowStatements()).toBe(3);
    expect(fundingRowStatements(true)).toBe(4);
    const single = planSettlement(input(trades));
    const dual = planSettlement(input(trades, { dualHistory: true }));
    expect(dual.chunks[0]!.statementCount - single.chunks[0]!.statementCount).toBe(5);
    expect(dual.chunks[0]!.bytesEstimate - single.chunks[0]!.bytesEstimate).toBe(5 * STATEMENT_BYTES.tradeHistory);
    // Under the same bounds the dual plan cuts more batches, each within them.
    const bounded = planSettlement(input(Array.from({ length: 30 }, (_, i) => trade(BigInt(i + 1))), { batchStatementsMax: 60, dualHistory: true }));
    for (const chunk of bounded.chunks) {
      expect(chunk.statementCount).toBeLessThanOrEqual(60);
      expect(chunk.statementCount).toBe(chunk.trades.reduce((n, t) => n + tradeRowStatements(t, true), 0) + chunk.rows.length + 1);
    }
  });

  it('dead-letters a trade id seen again under another sequence, in the job or in storage', () => {
    const plan = planSettlement(
      input([trade(5n, { tradeId: 1n }), trade(6n, { tradeId: 1n }), trade(7n, { tradeId: 2n }), trade(8n, { tradeId: 3n })], {
        settledTradeSeqs: new Map([[2n, 3n], [3n, 8n]]),
      }),
    );
    const letters = plan.chunks.flatMap((c) => c.deadLetters);
    expect(letters.map((l) => [l.seq, l.code, l.field])).toEqual([
      [6n, 'DUPLICATE_TRADE', 'tradeId'],
      [7n, 'DUPLICATE_TRADE', 'tradeId'],
    ]);
    expect(letters[0]!.reason).toBe('Duplicate trade: trade_id 1 at seq 6 repeats the one at seq 5');
    expect(letters[1]!.reason).toBe('Duplicate trade: trade_id 2 at seq 7 was already settled at seq 3');
    expect(JSON.parse(letters[1]!.raw)).toMatchObject({ tradeId: '2', seq: '7' });
    // Trade 3 is stored under its own sequence: settled before, not applied again, not a dead letter.
    expect(plan).toMatchObject({ applied: 1, alreadySettled: 1, deadLettered: 2 });
    expect(plan.chunks[0]!.lastSeq).toBe(8n);
  });

  it('dead-letters a message whose amounts overflow and applies the messages around it', () => {
    const plan = planSettlement(input([deposit(1n, 5n, 10n), deposit(2n, 5n, I64_MAX), deposit(3n, 5n, 20n)]));
    expect(plan).toMatchObject({ applied: 2, deadLettered: 1 });
    const letter = plan.chunks[0]!.deadLetters[0]!;
    expect(letter).toMatchObject({ seq: 2n, code: 'AMOUNT_OVERFLOW' });
    expect(letter.reason).toContain('does not fit in a signed 64-bit integer');
    expect(finalRows(plan).get('5/1')).toMatchObject({ available: 30n, version: 3n });
  });

  it('dead-letters messages that do not belong to the shard', () => {
    const plan = planSettlement(
      input([trade(1n, { baseAsset: 3 }), trade(2n, { shard: 'eth_usdt' }), deposit(3n, 5n, 1n)], { shard: 'btc_usdt', market: btcUsdt }),
    );
    expect(plan.chunks[0]!.deadLetters.map((l) => [l.code, l.field])).toEqual([
      ['WRONG_SHARD', 'baseAsset'],
      ['WRONG_SHARD', 'shard'],
      ['WRONG_SHARD', 'shard'],
    ]);
    const funding = planSettlement(input([deposit(1n, 5n, 1n, 77)]));
    expect(funding.chunks[0]!.deadLetters[0]).toMatchObject({ code: 'UNKNOWN_ASSET', field: 'currency' });
  });

  it('places decoder rejections in sequence order and counts their sequence', () => {
    const rejected = [
      { seq: 2n, code: 'INVALID_MESSAGE', reason: 'bad', field: 'messages.1.amount', raw: '{}' },
      { seq: undefined, code: 'INVALID_MESSAGE', reason: 'worse', field: 'messages.3', raw: '[]' },
      { seq: 9n, code: 'INVALID_MESSAGE', reason: 'last', field: 'messages.4.amount', raw: '{}' },
    ];
    const plan = planSettlement(input([deposit(1n, 5n, 1n), deposit(3n, 5n, 1n)], { rejected, batchStatementsMax: 10 }));
    // [worse, seq 1, bad (seq 2), seq 3] fill the first batch (10 statements); seq 9 needs another.
    expect(plan.chunks.map((c) => ({ letters: c.deadLetters.map((d) => d.reason), funding: c.funding.map((f) => f.seq), lastSeq: c.lastSeq, statements: c.statementCount }))).toEqual([
      { letters: ['worse', 'bad'], funding: [1n, 3n], lastSeq: 3n, statements: 10 },
      { letters: ['last'], funding: [], lastSeq: 9n, statements: 2 },
    ]);
    expect(plan.deadLettered).toBe(3);
  });

  it('plans an empty job as one batch that only moves nothing', () => {
    const plan = planSettlement(input([], { afterSeq: 7n }));
    expect(plan.chunks).toHaveLength(1);
    expect(plan.chunks[0]).toMatchObject({ lastSeq: 7n, statementCount: 1 });
  });

  it('conserves every asset: the rows of a trade job change supply by nothing', () => {
    const messages = [trade(1n, { buyerFee: 5n, sellerFee: 6n }), trade(2n, { buyerUserId: 11n, sellerUserId: 10n, buyerFee: 1n })];
    const plan = planSettlement(input(messages));
    const supply = new Map<number, bigint>();
    for (const row of finalRows(plan).values()) supply.set(row.assetId, (supply.get(row.assetId) ?? 0n) + row.available + row.locked);
    expect([...supply.values()]).toEqual([0n, 0n]);
    expect(finalRows(plan).get(`${FEE}/1`)?.available).toBe(6n);
    expect(tradeEffects(messages[0]!, FEE)).toHaveLength(6);
  });
});

describe('touchedRowKeys', () => {
  it('lists each row a job touches once, fee rows only with fees', () => {
    expect([...touchedRowKeys([trade(1n), deposit(2n, 10n, 1n)], FEE).keys()].sort()).toEqual(['10/1', '10/2', '11/1', '11/2']);
    expect([...touchedRowKeys([trade(1n, { sellerFee: 1n })], FEE).keys()]).toContain(`${FEE}/2`);
  });
});

describe('planCorrection', () => {
  it('adds the deltas to the stored rows, keeps their versions and records before/after', () => {
    const stored: BalanceRow = { userId: 1n, assetId: 2, available: 100n, locked: 5n, version: 40n };
    const rows = planCorrection(
      [
        { userId: 1n, assetId: 2, availableDelta: -10n, lockedDelta: 1n },
        { userId: 1n, assetId: 2, availableDelta: -5n, lockedDelta: 0n },
      ],
      (key) => (key === '1/2' ? stored : undefined),
      90n,
    );
    expect(rows).toEqual([{ before: stored, after: { ...stored, available: 85n, locked: 6n }, recreated: false }]);
  });

  it('leaves a row alone when it moved on since the delta was measured', () => {
    const stored: BalanceRow = { userId: 1n, assetId: 2, available: 100n, locked: 5n, version: 41n };
    const rows = planCorrection(
      [
        { userId: 1n, assetId: 2, availableDelta: -10n, lockedDelta: 0n, version: 40n },
        { userId: 3n, assetId: 2, availableDelta: 7n, lockedDelta: 0n, version: 0n },
      ],
      (key) => (key === '1/2' ? stored : undefined),
      90n,
    );
    expect(rows).toEqual([{ before: { userId: 3n, assetId: 2, available: 0n, locked: 0n, version: 0n }, after: { userId: 3n, assetId: 2, available: 7n, locked: 0n, version: 90n }, recreated: true }]);
  });

  it('recreates a missing row with the shard watermark as version, so history up to it explains the row', () => {
    const rows = planCorrection(
      [
        { userId: 2n, assetId: 2, availableDelta: 3n, lockedDelta: 7n },
        { userId: 2n, assetId: 2, availableDelta: 1n, lockedDelta: 0n },
      ],
      () => undefined,
      90n,
    );
    expect(rows).toEqual([
      {
        before: { userId: 2n, assetId: 2, available: 0n, locked: 0n, version: 0n },
        after: { userId: 2n, assetId: 2, available: 4n, locked: 7n, version: 90n },
        recreated: true,
      },
    ]);
  });

  it('asks only for the stored row, once per row', () => {
    const asked: string[] = [];
    planCorrection(
      [
        { userId: 1n, assetId: 2, availableDelta: 1n, lockedDelta: 0n },
        { userId: 1n, assetId: 2, availableDelta: 1n, lockedDelta: 0n },
        { userId: 3n, assetId: 1, availableDelta: 1n, lockedDelta: 0n },
      ],
      (key) => {
        asked.push(key);
        return undefined;
      },
      1n,
    );
    expect(asked).toEqual(['1/2', '3/1']);
  });

  it('refuses a correction that would overflow', () => {
    expect(() =>
      planCorrection([{ userId: 1n, assetId: 2, availableDelta: I64_MAX, lockedDelta: 0n }], () => ({ userId: 1n, assetId: 2, available: 1n, locked: 0n, version: 1n }), 1n),
    ).toThrow(/does not fit/);
  });
});

describe('correctionRowsNotVisible', () => {
  const row = (userId: bigint, assetId: number, available: bigint, locked: bigint, version: bigint): BalanceRow => ({ userId, assetId, available, locked, version });
  const applied = planCorrection(
    [
      { userId: 1n, assetId: 1, availableDelta: 5n, lockedDelta: 0n, version: 7n },
      { userId: 2n, assetId: 1, availableDelta: -3n, lockedDelta: 1n, version: 9n },
      { userId: 3n, assetId: 2, availableDelta: 10n, lockedDelta: 0n, version: 0n },
    ],
    (key) => new Map([[balanceRowKey(1n, 1), row(1n, 1, 100n, 0n, 7n)], [balanceRowKey(2n, 1), row(2n, 1, 50n, 5n, 9n)]]).get(key),
    12n,
  );

  it('gives the corrected value of every row still as the correction found it, a recreated one included', () => {
    const before = new Map([[balanceRowKey(1n, 1), row(1n, 1, 100n, 0n, 7n)], [balanceRowKey(2n, 1), row(2n, 1, 50n, 5n, 9n)]]);
    expect(correctionRowsNotVisible(applied, (key) => before.get(key))).toEqual([row(1n, 1, 105n, 0n, 7n), row(2n, 1, 47n, 6n, 9n), row(3n, 2, 10n, 0n, 12n)]);
  });

  it('leaves rows that show the correction, and rows that moved on since', () => {
    const after = new Map([
      [balanceRowKey(1n, 1), row(1n, 1, 105n, 0n, 7n)], // corrected
      [balanceRowKey(2n, 1), row(2n, 1, 60n, 5n, 11n)], // a later message applied
      [balanceRowKey(3n, 2), row(3n, 2, 10n, 0n, 12n)], // recreated
    ]);
    expect(correctionRowsNotVisible(applied, (key) => after.get(key))).toEqual([]);
  });
});

describe('planSettlement bounded by bytes (settler.batch_bytes_max)', () => {
  const trades = Array.from({ length: 50 }, (_, i) => trade(BigInt(i + 1), { buyerUserId: 100n + BigInt(i), sellerUserId: 200n + BigInt(i) }));

  it('cuts a job into chunks whose estimated size stays under the bound, each continuing the last', () => {
    const whole = planSettlement(input(trades));
    expect(whole.chunks).toHaveLength(1);
    // A 50-trade job is well above Cassandra's 50 KB fail threshold, as measured (~126 KB).
    expect(whole.chunks[0]!.bytesEstimate).toBeGreaterThan(100_000);

    const bounded = planSettlement(input(trades, { batchBytesMax: 40_000 }));
    expect(bounded.chunks.length).toBeGreaterThanOrEqual(4);
    for (const chunk of bounded.chunks) expect(chunk.bytesEstimate).toBeLessThanOrEqual(40_000);
    expect(bounded.chunks.flatMap((c) => c.trades.map((t) => t.seq))).toEqual(trades.map((t) => t.seq));
    expect(bounded.chunks.at(-1)!.lastSeq).toBe(50n);
    // The same final rows, cut differently.
    expect(finalRows(bounded)).toEqual(finalRows(whole));
  });

  it('splits further after a "batch too large" rejection: the bound halves, never below BATCH_BYTES_MIN', () => {
    const first = planSettlement(input(trades, { batchBytesMax: 40_000 }));
    const shrunk = shrinkBatchBytes(40_000);
    expect(shrunk).toBe(20_000);
    const again = planSettlement(input(trades, { batchBytesMax: shrunk }));
    expect(again.chunks.length).toBeGreaterThan(first.chunks.length);
    for (const chunk of again.chunks) expect(chunk.bytesEstimate).toBeLessThanOrEqual(shrunk);
    expect(finalRows(again)).toEqual(finalRows(first));
    expect(shrinkBatchBytes(5_000)).toBe(BATCH_BYTES_MIN);
  });

  it('dead-letters a message that does not fit a batch on its own, and settles the rest', () => {
    const plan = planSettlement(input(trades.slice(0, 3), { batchBytesMax: 2_000 }));
    expect(plan.applied).toBe(0);
    expect(plan.deadLettered).toBe(3);
    const letter = plan.chunks[0]!.deadLetters[0]!;
    expect(letter.code).toBe('BATCH_TOO_LARGE');
    expect(letter.field).toBe('batch_bytes_max');
    expect(letter.reason).toMatch(/^Cannot apply trade at seq 1: its rows \(~\d+ bytes\) exceed settler.batch_bytes_max 2000 on their own$/);
    expect(plan.chunks.at(-1)!.lastSeq).toBe(3n);
  });
});
