/**
 * What each message does to balances, as signed deltas of (available, locked) per user and asset.
 * Trades are zero-sum per asset (fees go to the fee account); funding events change a user's
 * total only for deposits and withdrawals.
 */
import type { FundingMessage, TradeMessage, SettlementMessage } from './messages.js';
import { checkedAdd, checkedSub } from './money.js';

export type Party = 'buyer' | 'seller' | 'fee' | 'owner';

export interface BalanceDelta {
  readonly party: Party;
  readonly userId: bigint;
  readonly assetId: number;
  /** Change of the available balance, minor units. */
  readonly available: bigint;
  /** Change of the locked (frozen) balance, minor units. */
  readonly locked: bigint;
}

/** The fields of a trade that decide its effects; also what per-user history rows keep. */
export type TradeEffectInput = Pick<
  TradeMessage,
  | 'buyerUserId' | 'sellerUserId' | 'baseAsset' | 'quoteAsset' | 'quantity' | 'quoteAmount'
  | 'buyerRefund' | 'sellerRefund' | 'buyerFee' | 'sellerFee'
>;

export function tradeEffects(t: TradeEffectInput, feeAccountUserId: bigint): BalanceDelta[] {
  const deltas: BalanceDelta[] = [
    {
      party: 'buyer',
      userId: t.buyerUserId,
      assetId: t.quoteAsset,
      available: t.buyerRefund,
      locked: -checkedAdd(t.quoteAmount, t.buyerRefund, 'buyer quote released'),
    },
    { party: 'buyer', userId: t.buyerUserId, assetId: t.baseAsset, available: checkedSub(t.quantity, t.buyerFee, 'buyer base received'), locked: 0n },
    {
      party: 'seller',
      userId: t.sellerUserId,
      assetId: t.baseAsset,
      available: t.sellerRefund,
      locked: -checkedAdd(t.quantity, t.sellerRefund, 'seller base released'),
    },
    { party: 'seller', userId: t.sellerUserId, assetId: t.quoteAsset, available: checkedSub(t.quoteAmount, t.sellerFee, 'seller quote received'), locked: 0n },
  ];
  if (t.buyerFee > 0n) deltas.push({ party: 'fee', userId: feeAccountUserId, assetId: t.baseAsset, available: t.buyerFee, locked: 0n });
  if (t.sellerFee > 0n) deltas.push({ party: 'fee', userId: feeAccountUserId, assetId: t.quoteAsset, available: t.sellerFee, locked: 0n });
  return deltas;
}

export type FundingEffectInput = Pick<FundingMessage, 'userId' | 'eventType' | 'amount' | 'currency'>;

export function fundingEffects(e: FundingEffectInput): BalanceDelta[] {
  const base = { party: 'owner' as const, userId: e.userId, assetId: e.currency };
  switch (e.eventType) {
    case 'DEPOSIT':
      return [{ ...base, available: e.amount, locked: 0n }];
    case 'WITHDRAWAL':
      return [{ ...base, available: -e.amount, locked: 0n }];
    case 'LOCK':
      return [{ ...base, available: -e.amount, locked: e.amount }];
    case 'UNLOCK':
      return [{ ...base, available: e.amount, locked: -e.amount }];
  }
}

export function messageEffects(message: SettlementMessage, feeAccountUserId: bigint): BalanceDelta[] {
  return message.kind === 'trade' ? tradeEffects(message, feeAccountUserId) : fundingEffects(message);
}

/** Net change of each asset's total supply (available + locked over all users). */
export function supplyChange(deltas: readonly BalanceDelta[]): Map<number, bigint> {
  const byAsset = new Map<number, bigint>();
  for (const d of deltas) byAsset.set(d.assetId, (byAsset.get(d.assetId) ?? 0n) + d.available + d.locked);
  return byAsset;
}
