/**
 * A deterministic, self-consistent stream for settler tests: deposits, locks, trades (with
 * refunds and fees) that release those locks, unlocks and withdrawals, over every configured
 * symbol, numbered by one global counter (so each shard's sequence has holes, as with the
 * original engine). The expected balances are computed independently of the settler: the plain
 * sum of tradeEffects/fundingEffects deltas, no versions, no batching.
 */
import {
  FUNDING_SHARD,
  balanceRowKey,
  settlementJobId,
  type FundingEventType,
  type FundingMessage,
  type MarketCatalog,
  type SettlementMessage,
  type TradeMessage,
} from '@settlement/domain';
// The simulator's seeded generator: one implementation for every deterministic stream (an app
// used as a test fixture).
import { Rng } from '@settlement/simulator';

export interface StreamJob {
  readonly shard: string;
  readonly prevLastSeq: bigint;
  readonly messages: SettlementMessage[];
  readonly jobId: string;
}

export interface Expected {
  /** balanceRowKey(user, asset) → summed deltas. */
  readonly rows: Map<string, { userId: bigint; assetId: number; available: bigint; locked: bigint }>;
  /** Per asset: deposits − withdrawals. */
  readonly supply: Map<number, bigint>;
}

export interface GeneratedStream {
  readonly messages: SettlementMessage[];
  readonly users: bigint[];
  readonly lastSeqByShard: Map<string, bigint>;
  /** Next free global sequence (for a continuation stream). */
  readonly nextSeq: bigint;
  readonly nextTradeId: bigint;
}

export interface GenerateOptions {
  readonly catalog: MarketCatalog;
  /** Total messages, all shards. */
  readonly messages: number;
  readonly users: number;
  readonly seed: number;
  /** First global sequence. Default 1. */
  readonly firstSeq?: bigint;
  /** First user id. Default 1000. */
  readonly firstUserId?: bigint;
  /** First trade id. Default 2^63 − 5000, so ids cross 2^63 and exercise u64 storage. */
  readonly firstTradeId?: bigint;
  /** Share of trades with fees, 0-1. Default 0.3. */
  readonly feeShare?: number;
}

export function generateStream(options: GenerateOptions): GeneratedStream {
  const rng = new Rng(options.seed);
  const catalog = options.catalog;
  const markets = [...catalog.markets.values()];
  const assets = [...catalog.assets.keys()];
  const feeShare = options.feeShare ?? 0.3;
  const firstUser = options.firstUserId ?? 1000n;
  const users = Array.from({ length: options.users }, (_, i) => firstUser + BigInt(i));
  let seq = options.firstSeq ?? 1n;
  let tradeId = options.firstTradeId ?? 2n ** 63n - 5000n;
  const messages: SettlementMessage[] = [];
  const lastSeqByShard = new Map<string, bigint>();
  const openLocks: Array<{ userId: bigint; currency: number; amount: bigint }> = [];

  const funding = (userId: bigint, eventType: FundingEventType, amount: bigint, currency: number): void => {
    const s = seq++;
    const m: FundingMessage = { kind: 'funding', shard: FUNDING_SHARD, seq: s, userId, sequenceId: s, eventType, amount, currency, relatedId: BigInt(rng.int(0, 1_000_000)), createdAt: 1_700_000_000_000n + s };
    messages.push(m);
    lastSeqByShard.set(FUNDING_SHARD, s);
  };

  // Everyone starts with money in every asset; one whale holds amounts beyond 2^53.
  for (const userId of users) {
    for (const asset of assets) funding(userId, 'DEPOSIT', BigInt(rng.int(1_000, 9_000)) * 10n ** 10n, asset);
  }
  funding(users[0]!, 'DEPOSIT', 2n ** 55n + 12_345n, 1);

  while (messages.length < options.messages) {
    const roll = rng.next();
    if (roll < 0.55) {
      const market = rng.pick(markets);
      const buyer = rng.pick(users);
      const seller = rng.next() < 0.03 ? buyer : rng.pick(users);
      const quantity = BigInt(rng.int(1, 2_000)) * 10_000n;
      const price = BigInt(rng.int(1, 5_000)) * 10_000n;
      const quoteAmount = (price * quantity) / market.quoteDivisor;
      const buyerRefund = rng.next() < 0.5 ? 0n : BigInt(rng.int(0, 1000));
      const sellerRefund = rng.next() < 0.5 ? 0n : BigInt(rng.int(0, 1000));
      const withFee = rng.next() < feeShare;
      const buyerFee = withFee ? quantity / 1000n : 0n;
      const sellerFee = withFee ? quoteAmount / 1000n : 0n;
      // The engine locked what the orders reserve before they matched.
      funding(buyer, 'LOCK', quoteAmount + buyerRefund, market.quoteAsset);
      funding(seller, 'LOCK', quantity + sellerRefund, market.baseAsset);
      const s = seq++;
      const trade: TradeMessage = {
        kind: 'trade',
        shard: market.name,
        seq: s,
        tradeId: tradeId++,
        buyOrderId: BigInt(rng.int(1, 2 ** 30)) * 4_000_000_000n,
        sellOrderId: BigInt(rng.int(1, 2 ** 30)) * 4_000_000_000n + 1n,
        buyerUserId: buyer,
        sellerUserId: seller,
        price,
        quantity,
        quoteAmount,
        baseAsset: market.baseAsset,
        quoteAsset: market.quoteAsset,
        buyerRefund,
        sellerRefund,
        buyerFee,
        sellerFee,
        matchSeq: s * 2n,
        outputSequence: s,
        settledAt: 1_700_000_000_000n + s,
        buyerQuoteVersion: 2n ** 64n - 1n - s,
        buyerBaseVersion: s + 1n,
        sellerBaseVersion: s + 2n,
        sellerQuoteVersion: s + 3n,
      };
      messages.push(trade);
      lastSeqByShard.set(market.name, s);
    } else if (roll < 0.7) {
      const lock = { userId: rng.pick(users), currency: rng.pick(assets), amount: BigInt(rng.int(1, 100_000)) };
      funding(lock.userId, 'LOCK', lock.amount, lock.currency);
      openLocks.push(lock);
    } else if (roll < 0.82 && openLocks.length > 0) {
      const lock = openLocks.splice(rng.int(0, openLocks.length - 1), 1)[0]!;
      funding(lock.userId, 'UNLOCK', lock.amount, lock.currency);
    } else if (roll < 0.92) {
      funding(rng.pick(users), 'WITHDRAWAL', BigInt(rng.int(1, 1_000_000)), rng.pick(assets));
    } else {
      funding(rng.pick(users), 'DEPOSIT', BigInt(rng.int(1, 10_000_000)), rng.pick(assets));
    }
  }
  return { messages, users, lastSeqByShard, nextSeq: seq, nextTradeId: tradeId };
}

/**
 * What correct settlement must end with, computed straight from the rules in docs/ARCHITECTURE.md
 * ("What a message does to balances"), written out here rather than taken from the production effects
 * (libs/domain effects.ts), so a mistake there cannot hide in the oracle too; no versions, no
 * batching, no cache.
 */
export function expectedBalances(messages: readonly SettlementMessage[], feeAccountUserId: bigint, into?: Expected): Expected {
  const expected: Expected = into ?? { rows: new Map(), supply: new Map() };
  const credit = (userId: bigint, assetId: number, available: bigint, locked: bigint): void => {
    const key = balanceRowKey(userId, assetId);
    const row = expected.rows.get(key) ?? { userId, assetId, available: 0n, locked: 0n };
    row.available += available;
    row.locked += locked;
    expected.rows.set(key, row);
  };
  for (const m of messages) {
    if (m.kind === 'trade') {
      // Buyer: frozen quote −= quote + refund, available quote += refund, available base += quantity − fee.
      credit(m.buyerUserId, m.quoteAsset, m.buyerRefund, -(m.quoteAmount + m.buyerRefund));
      credit(m.buyerUserId, m.baseAsset, m.quantity - m.buyerFee, 0n);
      // Seller: frozen base −= quantity + refund, available base += refund, available quote += quote − fee.
      credit(m.sellerUserId, m.baseAsset, m.sellerRefund, -(m.quantity + m.sellerRefund));
      credit(m.sellerUserId, m.quoteAsset, m.quoteAmount - m.sellerFee, 0n);
      // Fees to the fee account: the buyer's in base, the seller's in quote.
      if (m.buyerFee > 0n) credit(feeAccountUserId, m.baseAsset, m.buyerFee, 0n);
      if (m.sellerFee > 0n) credit(feeAccountUserId, m.quoteAsset, m.sellerFee, 0n);
      continue;
    }
    const { userId, currency, amount } = m;
    if (m.eventType === 'DEPOSIT') credit(userId, currency, amount, 0n);
    else if (m.eventType === 'WITHDRAWAL') credit(userId, currency, -amount, 0n);
    else if (m.eventType === 'LOCK') credit(userId, currency, -amount, amount);
    else credit(userId, currency, amount, -amount);
    if (m.eventType === 'DEPOSIT' || m.eventType === 'WITHDRAWAL') {
      const sign = m.eventType === 'DEPOSIT' ? 1n : -1n;
      expected.supply.set(currency, (expected.supply.get(currency) ?? 0n) + sign * amount);
    }
  }
  return expected;
}

/** Cuts each shard's messages into chained jobs of `size`. */
export function toJobs(messages: readonly SettlementMessage[], size: number, options: { idSuffix?: string; prevByShard?: Map<string, bigint> } = {}): StreamJob[] {
  const byShard = new Map<string, SettlementMessage[]>();
  for (const m of messages) {
    const list = byShard.get(m.shard) ?? [];
    list.push(m);
    byShard.set(m.shard, list);
  }
  const jobs: StreamJob[] = [];
  for (const [shard, list] of byShard) {
    let prev = options.prevByShard?.get(shard) ?? 0n;
    for (let i = 0; i < list.length; i += size) {
      const slice = list.slice(i, i + size);
      const first = slice[0]!.seq;
      const last = slice[slice.length - 1]!.seq;
      jobs.push({ shard, prevLastSeq: prev, messages: slice, jobId: settlementJobId(shard, first, last) + (options.idSuffix ?? '') });
      prev = last;
    }
  }
  return jobs;
}
