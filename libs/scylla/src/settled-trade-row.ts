/**
 * A settled trade as stored, defined once: its row of settled_trades_<symbol> and its rows of
 * trades_by_user (one per party), the column lists in the order of the values, and the mapping
 * both ways. The settlement writer writes through it; the trade, export and history reads read
 * through it. u64 columns travel through u64ToCql / u64FromCql (see client.ts).
 */
import type cassandra from 'cassandra-driver';
import type { TradeEffectInput, TradeMessage, TradeSide } from '@settlement/domain';
import { u64FromCql, u64ToCql } from './client.js';

/** A row of settled_trades_<symbol>: the trade message as settled, with its symbol for its shard. */
export interface SettledTrade extends Omit<TradeMessage, 'kind' | 'shard'> {
  readonly symbol: string;
}

/** A row of trades_by_user: one per party of a trade ('fee' for the fee account). */
export interface UserTrade extends TradeEffectInput, Pick<TradeMessage, 'seq' | 'tradeId' | 'price' | 'settledAt'> {
  readonly userId: bigint;
  readonly symbol: string;
  readonly side: TradeSide;
}

/** Each field of a settled trade and its column of settled_trades_<symbol>, in the table's (and settledTradeValues') order. */
export const SETTLED_TRADE_COLUMN_OF = {
  tradeId: 'trade_id', seq: 'seq', buyOrderId: 'buy_order_id', sellOrderId: 'sell_order_id', buyerUserId: 'buyer_user_id',
  sellerUserId: 'seller_user_id', price: 'price', quantity: 'quantity', quoteAmount: 'quote_amount', baseAsset: 'base_asset',
  quoteAsset: 'quote_asset', buyerRefund: 'buyer_refund', sellerRefund: 'seller_refund', buyerFee: 'buyer_fee', sellerFee: 'seller_fee',
  matchSeq: 'match_seq', outputSequence: 'output_sequence', settledAt: 'settled_at', buyerQuoteVersion: 'buyer_quote_version',
  buyerBaseVersion: 'buyer_base_version', sellerBaseVersion: 'seller_base_version', sellerQuoteVersion: 'seller_quote_version',
} as const satisfies { readonly [K in keyof Omit<SettledTrade, 'symbol'>]-?: string };

/** The columns of settled_trades_<symbol>, in the order of settledTradeValues. */
export const SETTLED_TRADE_COLUMNS: readonly string[] = Object.values(SETTLED_TRADE_COLUMN_OF);

/** The columns of trades_by_user, in the order of userTradeValues. */
export const USER_TRADE_COLUMNS = [
  'user_id', 'symbol', 'seq', 'side', 'trade_id', 'buyer_user_id', 'seller_user_id', 'base_asset', 'quote_asset', 'price',
  'quantity', 'quote_amount', 'buyer_refund', 'seller_refund', 'buyer_fee', 'seller_fee', 'settled_at',
] as const;

/** The values of a trade's settled_trades row, in SETTLED_TRADE_COLUMNS order (written per trade: by hand, no reflection). */
export function settledTradeValues(t: TradeMessage): unknown[] {
  return [
    u64ToCql(t.tradeId), t.seq, u64ToCql(t.buyOrderId), u64ToCql(t.sellOrderId), t.buyerUserId, t.sellerUserId, t.price, t.quantity, t.quoteAmount,
    t.baseAsset, t.quoteAsset, t.buyerRefund, t.sellerRefund, t.buyerFee, t.sellerFee, u64ToCql(t.matchSeq), u64ToCql(t.outputSequence),
    u64ToCql(t.settledAt), u64ToCql(t.buyerQuoteVersion), u64ToCql(t.buyerBaseVersion), u64ToCql(t.sellerBaseVersion), u64ToCql(t.sellerQuoteVersion),
  ];
}

/**
 * The values of one party's trades_by_user row, in USER_TRADE_COLUMNS order. Every column is
 * filled, so the reconciler can recompute a party's balance from its rows alone (tradeEffects).
 */
export function userTradeValues(userId: bigint, side: TradeSide, t: TradeMessage): unknown[] {
  return [
    userId, t.shard, t.seq, side, u64ToCql(t.tradeId), t.buyerUserId, t.sellerUserId, t.baseAsset, t.quoteAsset, t.price,
    t.quantity, t.quoteAmount, t.buyerRefund, t.sellerRefund, t.buyerFee, t.sellerFee, u64ToCql(t.settledAt),
  ];
}

/** A bigint column; null (never written) reads as 0. */
export const bigintOf = (row: cassandra.types.Row, column: string): bigint => (row[column] as bigint | null) ?? 0n;
/** A u64 column, stored as its signed 64-bit image. */
export const u64Of = (row: cassandra.types.Row, column: string): bigint => u64FromCql(bigintOf(row, column));

/** A row of settled_trades_<symbol> read with at least SETTLED_TRADE_COLUMNS. */
export function settledTradeOfRow(symbol: string, row: cassandra.types.Row): SettledTrade {
  return {
    symbol,
    tradeId: u64Of(row, 'trade_id'),
    seq: bigintOf(row, 'seq'),
    buyOrderId: u64Of(row, 'buy_order_id'),
    sellOrderId: u64Of(row, 'sell_order_id'),
    buyerUserId: bigintOf(row, 'buyer_user_id'),
    sellerUserId: bigintOf(row, 'seller_user_id'),
    price: bigintOf(row, 'price'),
    quantity: bigintOf(row, 'quantity'),
    quoteAmount: bigintOf(row, 'quote_amount'),
    baseAsset: row['base_asset'] as number,
    quoteAsset: row['quote_asset'] as number,
    buyerRefund: bigintOf(row, 'buyer_refund'),
    sellerRefund: bigintOf(row, 'seller_refund'),
    buyerFee: bigintOf(row, 'buyer_fee'),
    sellerFee: bigintOf(row, 'seller_fee'),
    matchSeq: u64Of(row, 'match_seq'),
    outputSequence: u64Of(row, 'output_sequence'),
    settledAt: u64Of(row, 'settled_at'),
    buyerQuoteVersion: u64Of(row, 'buyer_quote_version'),
    buyerBaseVersion: u64Of(row, 'buyer_base_version'),
    sellerBaseVersion: u64Of(row, 'seller_base_version'),
    sellerQuoteVersion: u64Of(row, 'seller_quote_version'),
  };
}

/** A row of trades_by_user read with USER_TRADE_COLUMNS. */
export function userTradeOfRow(row: cassandra.types.Row): UserTrade {
  return {
    userId: bigintOf(row, 'user_id'),
    symbol: row['symbol'] as string,
    seq: bigintOf(row, 'seq'),
    side: row['side'] as TradeSide,
    tradeId: u64Of(row, 'trade_id'),
    buyerUserId: bigintOf(row, 'buyer_user_id'),
    sellerUserId: bigintOf(row, 'seller_user_id'),
    baseAsset: row['base_asset'] as number,
    quoteAsset: row['quote_asset'] as number,
    price: bigintOf(row, 'price'),
    quantity: bigintOf(row, 'quantity'),
    quoteAmount: bigintOf(row, 'quote_amount'),
    buyerRefund: bigintOf(row, 'buyer_refund'),
    sellerRefund: bigintOf(row, 'seller_refund'),
    buyerFee: bigintOf(row, 'buyer_fee'),
    sellerFee: bigintOf(row, 'seller_fee'),
    settledAt: u64Of(row, 'settled_at'),
  };
}

/** `INSERT INTO <table> (<columns>) VALUES (?, …) USING TIMESTAMP ?`: the values, then the write timestamp. */
export function insertCql(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) USING TIMESTAMP ?`;
}
