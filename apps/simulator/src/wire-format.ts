/**
 * Builds engine wire messages (MatchExecData, LedgerEvent) as JSON text, integers written
 * exactly (bigint → digits). The send-time field (settled_at / created_at) is written last, so a
 * message is stored as a head string and completed at send time with `head + epochMs + "}"`.
 */
import type { FundingMessage, TradeMessage } from '@settlement/domain';

/** What the engine sends of a trade: not the settlement's own fields (shard, seq, quote amount), nor the send time. */
export type TradeFields = Omit<TradeMessage, 'kind' | 'shard' | 'seq' | 'quoteAmount' | 'settledAt'>;

/** What the engine sends of a funding event but the send time. */
export type FundingFields = Omit<FundingMessage, 'kind' | 'shard' | 'seq' | 'createdAt'>;

/**
 * Everything of a trade but settled_at, which is appended at send time. The fees are optional
 * extensions, written only when above zero, as engines without fees do not send them.
 */
export function tradeHead(t: TradeFields): string {
  const fees = (t.buyerFee > 0n ? `,"buyer_fee":${t.buyerFee}` : '') + (t.sellerFee > 0n ? `,"seller_fee":${t.sellerFee}` : '');
  return (
    `{"trade_id":${t.tradeId},"buy_order_id":${t.buyOrderId},"sell_order_id":${t.sellOrderId},` +
    `"buyer_user_id":${t.buyerUserId},"seller_user_id":${t.sellerUserId},"price":${t.price},"quantity":${t.quantity},` +
    `"base_asset":${t.baseAsset},"quote_asset":${t.quoteAsset},"buyer_refund":${t.buyerRefund},"seller_refund":${t.sellerRefund},` +
    `"match_seq":${t.matchSeq},"output_sequence":${t.outputSequence},"buyer_quote_version":${t.buyerQuoteVersion},` +
    `"buyer_base_version":${t.buyerBaseVersion},"seller_base_version":${t.sellerBaseVersion},"seller_quote_version":${t.sellerQuoteVersion}` +
    `${fees},"settled_at":`
  );
}

/** Everything of a funding event but created_at, which is appended at send time. */
export function fundingHead(e: FundingFields): string {
  return (
    `{"user_id":${e.userId},"sequence_id":${e.sequenceId},"event_type":"${e.eventType}","amount":${e.amount},` +
    `"currency":${e.currency},"related_id":${e.relatedId},"created_at":`
  );
}

export function completeMessage(head: string, sentAtMs: number): string {
  return `${head}${sentAtMs}}`;
}
