import { describe, expect, it } from 'vitest';
import { applyMessages, balanceRowKey, sumRows } from './balances.js';
import { fundingEffects, supplyChange, tradeEffects } from './effects.js';
import type { SettlementMessage, TradeMessage } from './messages.js';

const trade: TradeMessage = {
  kind: 'trade', shard: 'btc_usdt', seq: 5n, tradeId: 1n, buyOrderId: 1n, sellOrderId: 2n,
  buyerUserId: 10n, sellerUserId: 11n, price: 60_000_000_000n, quantity: 1_000_000n, quoteAmount: 600_000_000n,
  baseAsset: 1, quoteAsset: 2, buyerRefund: 7n, sellerRefund: 3n, buyerFee: 100n, sellerFee: 50n,
  matchSeq: 1n, outputSequence: 5n, settledAt: 0n, buyerQuoteVersion: 0n, buyerBaseVersion: 0n, sellerBaseVersion: 0n, sellerQuoteVersion: 0n,
};

describe('effects', () => {
  it('a trade is zero-sum per asset, fees included', () => {
    const deltas = tradeEffects(trade, 99n);
    expect([...supplyChange(deltas).values()]).toEqual([0n, 0n]);
    expect(deltas.filter((d) => d.userId === 99n)).toHaveLength(2);
  });

  it('moves the buyer frozen quote and refunds, as the wire format in README "Guarantees" and docs/ARCHITECTURE.md say', () => {
    const buyerQuote = tradeEffects(trade, 99n).find((d) => d.party === 'buyer' && d.assetId === 2)!;
    expect(buyerQuote).toMatchObject({ available: 7n, locked: -600_000_007n });
  });

  it('deposits and withdrawals change supply, locks do not', () => {
    expect(fundingEffects({ userId: 1n, eventType: 'DEPOSIT', amount: 5n, currency: 1 })).toEqual([{ party: 'owner', userId: 1n, assetId: 1, available: 5n, locked: 0n }]);
    expect(supplyChange(fundingEffects({ userId: 1n, eventType: 'LOCK', amount: 5n, currency: 1 })).get(1)).toBe(0n);
    expect(supplyChange(fundingEffects({ userId: 1n, eventType: 'WITHDRAWAL', amount: 5n, currency: 1 })).get(1)).toBe(-5n);
  });
});

describe('applyMessage (what the settle plan applies each message through), via applyMessages', () => {
  const lock: SettlementMessage = { kind: 'funding', shard: 'funding', seq: 1n, userId: 10n, sequenceId: 1n, eventType: 'DEPOSIT', amount: 1000n, currency: 2, relatedId: 0n, createdAt: 0n };

  it('applies a message once: a replay against rows at its version is a no-op', () => {
    const first = applyMessages([lock], () => undefined, 0n);
    const row = first.get(balanceRowKey(10n, 2))!;
    expect(row).toMatchObject({ available: 1000n, version: 1n });
    const replay = applyMessages([lock], (key) => first.get(key), 0n);
    expect(replay.size).toBe(0);
  });

  it('nets a self-trade on the same row before the version check', () => {
    const selfTrade = { ...trade, sellerUserId: 10n, buyerFee: 0n, sellerFee: 0n, buyerRefund: 0n, sellerRefund: 0n };
    const rows = applyMessages([selfTrade], () => undefined, 0n);
    expect(rows.get(balanceRowKey(10n, 2))).toMatchObject({ available: 600_000_000n, locked: -600_000_000n });
    expect(rows.get(balanceRowKey(10n, 1))).toMatchObject({ available: 1_000_000n, locked: -1_000_000n });
  });

  it('rejects a result outside the signed 64-bit range', () => {
    const huge: SettlementMessage = { ...lock, seq: 2n, amount: 2n ** 63n - 1n };
    expect(() => applyMessages([huge], () => ({ userId: 10n, assetId: 2, available: 1n, locked: 0n, version: 1n }), 0n)).toThrow(/does not fit in a signed 64-bit integer/);
  });

  it('sums a user\'s shard rows per asset', () => {
    const sums = sumRows([
      { userId: 1n, assetId: 1, available: 5n, locked: 2n, version: 1n },
      { userId: 1n, assetId: 1, available: -3n, locked: 1n, version: 9n },
    ]);
    expect(sums.get(1)).toEqual({ available: 2n, locked: 3n });
  });
});
