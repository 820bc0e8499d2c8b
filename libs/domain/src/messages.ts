/** Settlement messages after validation: every id and amount a bigint, asset ids small numbers. */

export const FundingEventType = {
  DEPOSIT: 'DEPOSIT',
  WITHDRAWAL: 'WITHDRAWAL',
  LOCK: 'LOCK',
  UNLOCK: 'UNLOCK',
} as const;
export type FundingEventType = (typeof FundingEventType)[keyof typeof FundingEventType];

/** A matched trade (the engine's MatchExecData), routed to its market. */
export interface TradeMessage {
  readonly kind: 'trade';
  /** Shard (= symbol) the trade belongs to. */
  readonly shard: string;
  /** Position in the shard's stream: output_sequence, or ingestor-assigned when the engine sent 0. */
  readonly seq: bigint;
  readonly tradeId: bigint;
  readonly buyOrderId: bigint;
  readonly sellOrderId: bigint;
  readonly buyerUserId: bigint;
  readonly sellerUserId: bigint;
  /** Quote minor units per whole base unit (or pre-scaled, per the market's quote divisor). */
  readonly price: bigint;
  /** Base minor units. */
  readonly quantity: bigint;
  /** price × quantity / quote divisor, quote minor units. */
  readonly quoteAmount: bigint;
  readonly baseAsset: number;
  readonly quoteAsset: number;
  /** Quote minor units released from the buyer's frozen balance back to available. */
  readonly buyerRefund: bigint;
  /** Base minor units released from the seller's frozen balance back to available. */
  readonly sellerRefund: bigint;
  /** Base minor units kept from the buyer's proceeds for the fee account. */
  readonly buyerFee: bigint;
  /** Quote minor units kept from the seller's proceeds for the fee account. */
  readonly sellerFee: bigint;
  readonly matchSeq: bigint;
  readonly outputSequence: bigint;
  /** Epoch ms as sent by the engine. */
  readonly settledAt: bigint;
  readonly buyerQuoteVersion: bigint;
  readonly buyerBaseVersion: bigint;
  readonly sellerBaseVersion: bigint;
  readonly sellerQuoteVersion: bigint;
}

/** A deposit, withdrawal, lock or unlock (the engine's LedgerEvent). */
export interface FundingMessage {
  readonly kind: 'funding';
  readonly shard: string;
  readonly seq: bigint;
  readonly userId: bigint;
  /** The engine's own number; 0 when it does not number funding events. */
  readonly sequenceId: bigint;
  readonly eventType: FundingEventType;
  readonly amount: bigint;
  readonly currency: number;
  readonly relatedId: bigint;
  /** Epoch ms. */
  readonly createdAt: bigint;
}

export type SettlementMessage = TradeMessage | FundingMessage;

/** A validated message before the ingestor gives it its shard sequence. */
export type UnsequencedMessage = Omit<TradeMessage, 'seq'> | Omit<FundingMessage, 'seq'>;

/** The sequence the engine itself gave the message (0 = none). */
export function engineSequence(message: UnsequencedMessage): bigint {
  return message.kind === 'trade' ? message.outputSequence : message.sequenceId;
}
