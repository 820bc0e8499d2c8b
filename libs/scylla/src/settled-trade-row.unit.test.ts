import type cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import type { TradeMessage } from '@settlement/domain';
import { SETTLED_TRADE_COLUMNS, USER_TRADE_COLUMNS, settledTradeOfRow, settledTradeValues, userTradeOfRow, userTradeValues } from './settled-trade-row.js';

// Every u64 above 2^63, so a column mapped without u64ToCql / u64FromCql shows.
const trade: TradeMessage = {
  kind: 'trade', shard: 'btc_usdt', seq: 7n, tradeId: 2n ** 64n - 1n, buyOrderId: 2n ** 63n, sellOrderId: 2n ** 63n + 1n, buyerUserId: 10n, sellerUserId: 11n,
  price: 60_000n, quantity: 100_000_000n, quoteAmount: 60_000n, baseAsset: 1, quoteAsset: 2, buyerRefund: 3n, sellerRefund: 4n,
  buyerFee: 10n, sellerFee: 5n, matchSeq: 2n ** 63n + 2n, outputSequence: 2n ** 63n + 3n, settledAt: 2n ** 63n + 4n,
  buyerQuoteVersion: 2n ** 64n - 2n, buyerBaseVersion: 2n ** 63n + 5n, sellerBaseVersion: 2n ** 63n + 6n, sellerQuoteVersion: 2n ** 63n + 7n,
};

/** A driver row as Cassandra gives it back: the written values by column name. */
const rowOf = (columns: readonly string[], values: readonly unknown[]) => Object.fromEntries(columns.map((c, i) => [c, values[i]])) as unknown as cassandra.types.Row;

describe('settled trade row (settled_trades_<symbol>, trades_by_user)', () => {
  it('reads back the trade it writes, every column in its place', () => {
    const values = settledTradeValues(trade);
    expect(values).toHaveLength(SETTLED_TRADE_COLUMNS.length);
    const { kind: _kind, shard: _shard, ...fields } = trade;
    expect(settledTradeOfRow('btc_usdt', rowOf(SETTLED_TRADE_COLUMNS, values))).toEqual({ symbol: 'btc_usdt', ...fields });
  });

  it('reads back each party row it writes', () => {
    const values = userTradeValues(99n, 'fee', trade);
    expect(values).toHaveLength(USER_TRADE_COLUMNS.length);
    expect(userTradeOfRow(rowOf(USER_TRADE_COLUMNS, values))).toEqual({
      userId: 99n, symbol: 'btc_usdt', seq: 7n, side: 'fee', tradeId: trade.tradeId, buyerUserId: 10n, sellerUserId: 11n, baseAsset: 1, quoteAsset: 2,
      price: 60_000n, quantity: 100_000_000n, quoteAmount: 60_000n, buyerRefund: 3n, sellerRefund: 4n, buyerFee: 10n, sellerFee: 5n, settledAt: trade.settledAt,
    });
  });

  it('stores u64 values as their signed 64-bit image', () => {
    expect(settledTradeValues(trade).slice(0, 4)).toEqual([-1n, 7n, -(2n ** 63n), -(2n ** 63n) + 1n]);
  });
});
