/**
 * Generates a self-consistent engine stream: deposits, locks, trades (with refunds and optional
 * fees), unlocks and withdrawals between N users. Users never spend more than they have, and the
 * locks a trade consumes are sent (on the funding shard) before the trade. Deterministic from
 * the seed.
 */
import { FUNDING_SHARD, MarketCatalog, pow10, type CatalogInput, type FundingEventType, type Market } from '@settlement/domain';
import { SimLedger } from './ledger.js';
import { Rng } from './rng.js';
import { fundingHead, tradeHead } from './wire-format.js';

export interface SimMessage {
  readonly kind: 'trade' | 'funding';
  /** Symbol for trades, "funding" for funding events. */
  readonly shard: string;
  /** output_sequence of a trade; sequence_id of a funding event (0 when not numbered). */
  readonly seq: bigint;
  /** 0-based position in its replay stream: all trades (one counter), or all funding events. */
  readonly streamIndex: number;
  /** JSON without its send-time field; see completeMessage. */
  readonly head: string;
}

export interface GenerateOptions {
  readonly market: CatalogInput;
  /** Valid messages to generate. */
  readonly messages: number;
  readonly users: number;
  readonly seed: number;
  /** Share of trades with fees, 0-1. */
  readonly feeShare: number;
  /** User ids are userIdBase+1 … userIdBase+users (skipping the fee account). */
  readonly userIdBase: bigint;
  /** output_sequence of the first trade − 1; lets a run start above 2^53. */
  readonly sequenceBase: bigint;
  /** Number funding events (sequence_id > 0) like the simulator's engine, or send 0 like the original one. */
  readonly numberFundingEvents: boolean;
}

export interface StreamCounts {
  trades: number;
  deposits: number;
  withdrawals: number;
  locks: number;
  unlocks: number;
}

export interface GeneratedStream {
  readonly messages: readonly SimMessage[];
  readonly ledger: SimLedger;
  readonly counts: StreamCounts;
  readonly users: readonly bigint[];
  /** Last output_sequence sent overall, and per symbol; last funding sequence_id. */
  readonly lastSequences: { readonly global: bigint; readonly funding: bigint; readonly bySymbol: ReadonlyMap<string, bigint> };
}

const WEIGHTS = { trade: 86, deposit: 6, withdrawal: 4, unlock: 4 } as const;

export function generateStream(options: GenerateOptions): GeneratedStream {
  if (!Number.isInteger(options.messages) || options.messages < 0) throw new RangeError(`messages must be a non-negative integer, got ${options.messages}`);
  if (!Number.isInteger(options.users) || options.users < 2) throw new RangeError(`users must be at least 2, got ${options.users}`);
  const catalog = new MarketCatalog(options.market);
  const markets = [...catalog.markets.values()];
  const rng = new Rng(options.seed);
  const ledger = new SimLedger([...catalog.assets.keys()]);
  const feeAccount = catalog.feeAccountUserId;
  const users: bigint[] = [];
  for (let id = options.userIdBase + 1n; users.length < options.users; id += 1n) if (id !== feeAccount) users.push(id);
  const assetIds = [...catalog.assets.keys()];

  const out: SimMessage[] = [];
  const counts: StreamCounts = { trades: 0, deposits: 0, withdrawals: 0, locks: 0, unlocks: 0 };
  const bySymbol = new Map<string, bigint>();
  const matchSeq = new Map<string, bigint>();
  let outputSeq = options.sequenceBase;
  let fundingSeq = 0n;
  let fundingIndex = 0;
  let tradeId = 0n;
  let orderId = 0n;
  let relatedId = 0n;
  const full = () => out.length >= options.messages;

  function funding(userId: bigint, eventType: FundingEventType, amount: bigint, currency: number, related: bigint): boolean {
    if (full()) return false;
    const sequenceId = options.numberFundingEvents ? (fundingSeq += 1n) : 0n;
    out.push({ kind: 'funding', shard: FUNDING_SHARD, seq: sequenceId, streamIndex: fundingIndex++, head: fundingHead({ userId, sequenceId, eventType, amount, currency, relatedId: related }) });
    return true;
  }

  function deposit(userId: bigint, asset: number, amount: bigint): boolean {
    if (!funding(userId, 'DEPOSIT', amount, asset, (relatedId += 1n))) return false;
    ledger.change(userId, asset, amount, 0n, 'deposit');
    ledger.total(asset).deposits += amount;
    counts.deposits += 1;
    return true;
  }

  function lock(userId: bigint, asset: number, amount: bigint, order: bigint): boolean {
    if (!funding(userId, 'LOCK', amount, asset, order)) return false;
    ledger.change(userId, asset, -amount, amount, 'lock');
    counts.locks += 1;
    return true;
  }

  /** Makes sure `need` is locked, depositing and locking first as a user would place an order. */
  function ensureLocked(userId: bigint, asset: number, need: bigint, order: bigint): boolean {
    const balance = ledger.get(userId, asset);
    if (balance.locked >= need) return true;
    const lockAmount = (need - balance.locked) * BigInt(rng.int(2, 12));
    if (balance.available < lockAmount) {
      const topUp = lockAmount - balance.available + need * BigInt(rng.int(0, 8));
      if (!deposit(userId, asset, topUp)) return false;
    }
    return lock(userId, asset, lockAmount, order);
  }

  function trade(market: Market): void {
    const buyer = rng.pick(users);
    let seller = rng.pick(users);
    while (seller === buyer) seller = rng.pick(users);
    const base = catalog.assets.get(market.baseAsset)!;
    const quantity = BigInt(rng.int(1, 10_000)) * pow10(Math.max(0, base.decimals - 4));
    // A price that is a multiple of the quote divisor keeps price × quantity / divisor exact.
    const pricePerStep = BigInt(rng.int(1, 1_000));
    const price = pricePerStep * market.quoteDivisor;
    const quote = pricePerStep * quantity;
    const withFees = rng.chance(options.feeShare);
    const buyerFee = withFees ? quantity / 1000n : 0n;
    const sellerFee = withFees ? quote / 1000n : 0n;
    const buyOrder = (orderId += 1n);
    const sellOrder = (orderId += 1n);
    if (!ensureLocked(buyer, market.quoteAsset, quote, buyOrder)) return;
    if (!ensureLocked(seller, market.baseAsset, quantity, sellOrder)) return;
    if (full()) return;
    // An order that completes returns what it locked but did not use: that is the refund.
    const buyerSpare = ledger.get(buyer, market.quoteAsset).locked - quote;
    const sellerSpare = ledger.get(seller, market.baseAsset).locked - quantity;
    const buyerRefund = buyerSpare > 0n && rng.chance(0.15) ? rng.bigint(1n, buyerSpare) : 0n;
    const sellerRefund = sellerSpare > 0n && rng.chance(0.15) ? rng.bigint(1n, sellerSpare) : 0n;
    const buyerQuoteVersion = ledger.change(buyer, market.quoteAsset, buyerRefund, -(quote + buyerRefund), 'trade: buyer quote');
    const buyerBaseVersion = ledger.change(buyer, market.baseAsset, quantity - buyerFee, 0n, 'trade: buyer base');
    const sellerBaseVersion = ledger.change(seller, market.baseAsset, sellerRefund, -(quantity + sellerRefund), 'trade: seller base');
    const sellerQuoteVersion = ledger.change(seller, market.quoteAsset, quote - sellerFee, 0n, 'trade: seller quote');
    if (buyerFee > 0n) {
      ledger.change(feeAccount, market.baseAsset, buyerFee, 0n, 'trade: buyer fee');
      ledger.total(market.baseAsset).fees += buyerFee;
    }
    if (sellerFee > 0n) {
      ledger.change(feeAccount, market.quoteAsset, sellerFee, 0n, 'trade: seller fee');
      ledger.total(market.quoteAsset).fees += sellerFee;
    }
    const seq = (outputSeq += 1n);
    const symbolMatchSeq = (matchSeq.get(market.name) ?? 0n) + 1n;
    matchSeq.set(market.name, symbolMatchSeq);
    bySymbol.set(market.name, seq);
    out.push({
      kind: 'trade',
      shard: market.name,
      seq,
      streamIndex: counts.trades,
      head: tradeHead({
        tradeId: (tradeId += 1n), buyOrderId: buyOrder, sellOrderId: sellOrder, buyerUserId: buyer, sellerUserId: seller,
        price, quantity, baseAsset: market.baseAsset, quoteAsset: market.quoteAsset, buyerRefund, sellerRefund,
        matchSeq: symbolMatchSeq, outputSequence: seq, buyerQuoteVersion, buyerBaseVersion, sellerBaseVersion, sellerQuoteVersion,
        buyerFee, sellerFee,
      }),
    });
    counts.trades += 1;
  }

  const totalWeight = WEIGHTS.trade + WEIGHTS.deposit + WEIGHTS.withdrawal + WEIGHTS.unlock;
  while (!full()) {
    const roll = rng.int(1, totalWeight);
    if (roll <= WEIGHTS.trade) {
      trade(rng.pick(markets));
      continue;
    }
    const user = rng.pick(users);
    const asset = rng.pick(assetIds);
    const balance = ledger.get(user, asset);
    if (roll <= WEIGHTS.trade + WEIGHTS.deposit) {
      deposit(user, asset, BigInt(rng.int(1, 1_000)) * pow10(catalog.assets.get(asset)!.decimals));
    } else if (roll <= WEIGHTS.trade + WEIGHTS.deposit + WEIGHTS.withdrawal) {
      if (balance.available === 0n) continue;
      const amount = rng.bigint(1n, balance.available);
      if (!funding(user, 'WITHDRAWAL', amount, asset, (relatedId += 1n))) break;
      ledger.change(user, asset, -amount, 0n, 'withdrawal');
      ledger.total(asset).withdrawals += amount;
      counts.withdrawals += 1;
    } else {
      if (balance.locked === 0n) continue;
      const amount = rng.bigint(1n, balance.locked);
      if (!funding(user, 'UNLOCK', amount, asset, (orderId += 1n))) break;
      ledger.change(user, asset, amount, -amount, 'unlock');
      counts.unlocks += 1;
    }
  }
  ledger.assertConserved();
  return { messages: out, ledger, counts, users, lastSequences: { global: outputSeq, funding: fundingSeq, bySymbol } };
}
