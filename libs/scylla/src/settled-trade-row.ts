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

/** How a column travels: a signed 64-bit bigint, a u64 stored as its signed image (u64ToCql), a small int, text. */
export type ColumnKind = 'bigint' | 'u64' | 'int' | 'text';

/** Each field of a settled trade: its column of settled_trades_<symbol> and how it travels, in the table's (and settledTradeValues') order. */
export const SETTLED_TRADE_FIELDS = {
  tradeId: ['trade_id', 'u64'], seq: ['seq', 'bigint'], buyOrderId: ['buy_order_id', 'u64'], sellOrderId: ['sell_order_id', 'u64'],
  buyerUserId: ['buyer_user_id', 'bigint'], sellerUserId: ['seller_user_id', 'bigint'], price: ['price', 'bigint'], quantity: ['quantity', 'bigint'],
  quoteAmount: ['quote_amount', 'bigint'], baseAsset: ['base_asset', 'int'], quoteAsset: ['quote_asset', 'int'], buyerRefund: ['buyer_refund', 'bigint'],
  sellerRefund: ['seller_refund', 'bigint'], buyerFee: ['buyer_fee', 'bigint'], sellerFee: ['seller_fee', 'bigint'], matchSeq: ['match_seq', 'u64'],
  outputSequence: ['output_sequence', 'u64'], settledAt: ['settled_at', 'u64'], buyerQuoteVersion: ['buyer_quote_version', 'u64'],
  buyerBaseVersion: ['buyer_base_version', 'u64'], sellerBaseVersion: ['seller_base_version', 'u64'], sellerQuoteVersion: ['seller_quote_version', 'u64'],
} as const satisfies { readonly [K in keyof Omit<SettledTrade, 'symbol'>]-?: readonly [string, ColumnKind] };

/** Each field of a trades_by_user row: its column and how it travels, in the table's (and userTradeValues') order. */
const USER_TRADE_FIELDS = {
  userId: ['user_id', 'bigint'], symbol: ['symbol', 'text'], seq: ['seq', 'bigint'], side: ['side', 'text'], tradeId: ['trade_id', 'u64'],
  buyerUserId: ['buyer_user_id', 'bigint'], sellerUserId: ['seller_user_id', 'bigint'], baseAsset: ['base_asset', 'int'], quoteAsset: ['quote_asset', 'int'],
  price: ['price', 'bigint'], quantity: ['quantity', 'bigint'], quoteAmount: ['quote_amount', 'bigint'], buyerRefund: ['buyer_refund', 'bigint'],
  sellerRefund: ['seller_refund', 'bigint'], buyerFee: ['buyer_fee', 'bigint'], sellerFee: ['seller_fee', 'bigint'], settledAt: ['settled_at', 'u64'],
} as const satisfies { readonly [K in keyof UserTrade]-?: readonly [string, ColumnKind] };

type FieldTable = Readonly<Record<string, readonly [string, ColumnKind]>>;
const entriesOf = (fields: FieldTable) => Object.entries(fields).map(([field, [column, kind]]) => ({ field, column, kind }));
const SETTLED_TRADE_ENTRIES = entriesOf(SETTLED_TRADE_FIELDS);
const USER_TRADE_ENTRIES = entriesOf(USER_TRADE_FIELDS);

/** The columns of settled_trades_<symbol>, in the order of settledTradeValues. */
export const SETTLED_TRADE_COLUMNS: readonly string[] = SETTLED_TRADE_ENTRIES.map((e) => e.column);

/** The columns of trades_by_user, in the order of userTradeValues. */
export const USER_TRADE_COLUMNS: readonly string[] = USER_TRADE_ENTRIES.map((e) => e.column);

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
  return readFields(row, SETTLED_TRADE_ENTRIES, { symbol }) as unknown as SettledTrade;
}

/** A row of trades_by_user read with USER_TRADE_COLUMNS. */
export function userTradeOfRow(row: cassandra.types.Row): UserTrade {
  return readFields(row, USER_TRADE_ENTRIES, {}) as unknown as UserTrade;
}

function readFields(row: cassandra.types.Row, entries: ReturnType<typeof entriesOf>, out: Record<string, unknown>): Record<string, unknown> {
  for (const { field, column, kind } of entries) {
    out[field] = kind === 'bigint' ? bigintOf(row, column) : kind === 'u64' ? u64Of(row, column) : row[column];
  }
  return out;
}

/** `INSERT INTO <table> (<columns>) VALUES (?, …) USING TIMESTAMP ?`: the values, then the write timestamp. */
export function insertCql(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')}) USING TIMESTAMP ?`;
}
