/**
 * The wire format of existing matching engines: one JSON object per ZMQ frame, either a trade
 * (MatchExecData) or a funding event (LedgerEvent). Numbers can exceed 2^53, so the JSON is
 * parsed losslessly: every integer becomes a bigint.
 */
import { isInteger, parse as parseLosslessJson } from 'lossless-json';
import { z } from 'zod';
import type { MarketCatalog } from './catalog.js';
import { FUNDING_SHARD } from './catalog.js';
import { DomainError } from './domain-error.js';
import { FundingEventType, type UnsequencedMessage } from './messages.js';
import { U64_MAX, I64_MAX, exactDiv } from './money.js';

/** Integers become bigint; other numbers stay numbers so validation can name them as fractional. */
function parseNumber(text: string): bigint | number {
  return isInteger(text) ? BigInt(text) : Number(text);
}

/**
 * A number literal that a double may not hold exactly: 16 or more digits, a fraction or an
 * exponent. Matches inside strings too, which only sends such frames down the slow path.
 */
const NEEDS_LOSSLESS = /\d{16}|\d[.eE]/;

/**
 * Parses a frame with every integer as a bigint. lossless-json costs ~6 µs a message, ten
 * times JSON.parse; when every number literal has at most 15 digits and no fraction or
 * exponent, JSON.parse is exact, so that common case takes the fast path and the rest goes
 * through lossless-json. Both paths give the same values (a unit test compares them).
 */
export function parseJsonWithBigints(text: string): unknown {
  const parsed = parseJsonExact(text);
  return parsed.integersAreBigints ? parsed.value : integersToBigints(parsed.value);
}

/**
 * The parse step of parseJsonWithBigints, before JSON.parse's integers become bigints: the
 * hand check of a frame reads them as numbers (exact: at most 15 digits).
 */
function parseJsonExact(text: string): { value: unknown; integersAreBigints: boolean } {
  return NEEDS_LOSSLESS.test(text)
    ? { value: parseLosslessJson(text, null, parseNumber), integersAreBigints: true }
    : { value: JSON.parse(text), integersAreBigints: false };
}

function integersToBigints(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  const container = value as Record<string, unknown>;
  for (const key of Object.keys(container)) container[key] = integersToBigints(container[key]);
  return value;
}

const u64 = z
  .bigint({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be an unsigned integer') })
  .min(0n, { error: 'must not be negative' })
  .max(U64_MAX, { error: 'must be at most 2^64-1' });

/** Amounts are stored as signed 64-bit values, so the engine's u64 must also fit in i63. */
const amount = u64.max(I64_MAX, { error: 'must be at most 2^63-1' });
const positiveAmount = amount.min(1n, { error: 'must be positive' });
const assetId = u64.max(2n ** 31n - 1n, { error: 'must be a 31-bit asset id' });

export const tradeWireSchema = z.object({
  trade_id: u64,
  buy_order_id: u64,
  sell_order_id: u64,
  buyer_user_id: amount,
  seller_user_id: amount,
  price: positiveAmount,
  quantity: positiveAmount,
  base_asset: assetId,
  quote_asset: assetId,
  buyer_refund: amount,
  seller_refund: amount,
  match_seq: u64,
  output_sequence: amount,
  settled_at: u64,
  buyer_quote_version: u64,
  buyer_base_version: u64,
  seller_base_version: u64,
  seller_quote_version: u64,
  buyer_fee: amount.optional(),
  seller_fee: amount.optional(),
  symbol: z.string().max(64).optional(),
});

export const fundingWireSchema = z.object({
  user_id: amount,
  sequence_id: amount,
  event_type: z.enum(Object.values(FundingEventType) as [FundingEventType, ...FundingEventType[]], {
    error: `must be one of ${Object.values(FundingEventType).join(', ')}`,
  }),
  amount: positiveAmount,
  currency: assetId,
  related_id: u64,
  created_at: u64,
});

export type WireParseResult =
  | { readonly ok: true; readonly message: UnsequencedMessage }
  | { readonly ok: false; readonly reason: string; readonly field?: string };

function describeIssues(what: string, issues: readonly z.core.$ZodIssue[]): { reason: string; field: string } {
  const first = issues[0]!;
  const field = first.path.join('.') || '(root)';
  const all = issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return { reason: `Invalid ${what}: ${all}`, field };
}

/** Parses and validates one frame. Never throws: a bad frame yields a reason naming the field. */
export function parseWireMessage(frame: Uint8Array | string, catalog: MarketCatalog): WireParseResult {
  const text = typeof frame === 'string' ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8');
  let parsed: ReturnType<typeof parseJsonExact>;
  try {
    parsed = parseJsonExact(text);
  } catch (error) {
    return { ok: false, reason: `Invalid message: not JSON: ${(error as Error).message}`, field: '(root)' };
  }
  const raw = parsed.value;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, reason: 'Invalid message: expected a JSON object', field: '(root)' };
  }
  try {
    if (!parsed.integersAreBigints) {
      // The hot path: a sound frame is checked by hand (zod per field was a sixth of the
      // ingestor's CPU). Anything it does not accept goes through zod, which then accepts it
      // too or names the field.
      const fast = fastWireMessage(raw as Record<string, unknown>, catalog);
      if (fast !== undefined) return fast;
      integersToBigints(raw);
    }
    if ('trade_id' in raw) {
      const result = tradeWireSchema.safeParse(raw);
      return result.success ? tradeFromWire(result.data, catalog) : { ok: false, ...describeIssues('trade', result.error.issues) };
    }
    if ('event_type' in raw) {
      const result = fundingWireSchema.safeParse(raw);
      return result.success ? fundingFromWire(result.data, catalog) : { ok: false, ...describeIssues('funding event', result.error.issues) };
    }
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, reason: error.message, field: error.field };
    throw error;
  }
  return {
    ok: false,
    reason: 'Invalid message: neither a trade (trade_id) nor a funding event (event_type)',
    field: '(root)',
  };
}

type TradeWire = z.output<typeof tradeWireSchema>;
type FundingWire = z.output<typeof fundingWireSchema>;

/** Largest asset id (31 bits). */
const ASSET_ID_MAX = 2 ** 31 - 1;
const FUNDING_EVENT_TYPES: ReadonlySet<unknown> = new Set(Object.values(FundingEventType));

/**
 * The schemas' rules checked by hand on a JSON.parse result whose number literals all have at
 * most 15 digits and no fraction or exponent (so every integer is exact and below 2^63): an
 * unsigned integer, at least 1 for price, quantity and amount, at most 2^31-1 for asset ids.
 * Returns undefined for anything it does not accept, so zod gives the reason; what it accepts,
 * zod accepts too with the same values (a unit test compares both on valid and broken frames).
 * Like zod's objects, it ignores unknown fields.
 */
function fastWireMessage(m: Record<string, unknown>, catalog: MarketCatalog): WireParseResult | undefined {
  if ('trade_id' in m) {
    const buyerFee = m['buyer_fee'];
    const sellerFee = m['seller_fee'];
    const symbol = m['symbol'];
    if (
      !uint(m['trade_id']) || !uint(m['buy_order_id']) || !uint(m['sell_order_id']) || !uint(m['buyer_user_id']) || !uint(m['seller_user_id']) ||
      !positive(m['price']) || !positive(m['quantity']) || !assetIdNumber(m['base_asset']) || !assetIdNumber(m['quote_asset']) ||
      !uint(m['buyer_refund']) || !uint(m['seller_refund']) || !uint(m['match_seq']) || !uint(m['output_sequence']) || !uint(m['settled_at']) ||
      !uint(m['buyer_quote_version']) || !uint(m['buyer_base_version']) || !uint(m['seller_base_version']) || !uint(m['seller_quote_version']) ||
      (buyerFee !== undefined && !uint(buyerFee)) || (sellerFee !== undefined && !uint(sellerFee)) ||
      (symbol !== undefined && (typeof symbol !== 'string' || symbol.length > 64))
    ) {
      return undefined;
    }
    const t: TradeWire = {
      trade_id: BigInt(m['trade_id'] as number),
      buy_order_id: BigInt(m['buy_order_id'] as number),
      sell_order_id: BigInt(m['sell_order_id'] as number),
      buyer_user_id: BigInt(m['buyer_user_id'] as number),
      seller_user_id: BigInt(m['seller_user_id'] as number),
      price: BigInt(m['price'] as number),
      quantity: BigInt(m['quantity'] as number),
      base_asset: BigInt(m['base_asset'] as number),
      quote_asset: BigInt(m['quote_asset'] as number),
      buyer_refund: BigInt(m['buyer_refund'] as number),
      seller_refund: BigInt(m['seller_refund'] as number),
      match_seq: BigInt(m['match_seq'] as number),
      output_sequence: BigInt(m['output_sequence'] as number),
      settled_at: BigInt(m['settled_at'] as number),
      buyer_quote_version: BigInt(m['buyer_quote_version'] as number),
      buyer_base_version: BigInt(m['buyer_base_version'] as number),
      seller_base_version: BigInt(m['seller_base_version'] as number),
      seller_quote_version: BigInt(m['seller_quote_version'] as number),
      buyer_fee: buyerFee === undefined ? undefined : BigInt(buyerFee as number),
      seller_fee: sellerFee === undefined ? undefined : BigInt(sellerFee as number),
      symbol: symbol as string | undefined,
    };
    return tradeFromWire(t, catalog);
  }
  if ('event_type' in m) {
    if (
      !uint(m['user_id']) || !uint(m['sequence_id']) || !FUNDING_EVENT_TYPES.has(m['event_type']) || !positive(m['amount']) ||
      !assetIdNumber(m['currency']) || !uint(m['related_id']) || !uint(m['created_at'])
    ) {
      return undefined;
    }
    const e: FundingWire = {
      user_id: BigInt(m['user_id'] as number),
      sequence_id: BigInt(m['sequence_id'] as number),
      event_type: m['event_type'] as FundingEventType,
      amount: BigInt(m['amount'] as number),
      currency: BigInt(m['currency'] as number),
      related_id: BigInt(m['related_id'] as number),
      created_at: BigInt(m['created_at'] as number),
    };
    return fundingFromWire(e, catalog);
  }
  return undefined;
}

/** An exact non-negative integer (JSON.parse of a literal of at most 15 digits). */
function uint(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function positive(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

function assetIdNumber(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= ASSET_ID_MAX;
}

/** A schema-valid trade against the catalog: its market, the exact quote amount, the fees. */
function tradeFromWire(t: TradeWire, catalog: MarketCatalog): WireParseResult {
  const baseAsset = Number(t.base_asset);
  const quoteAsset = Number(t.quote_asset);
  for (const [field, id] of [['base_asset', baseAsset], ['quote_asset', quoteAsset]] as const) {
    if (!catalog.assets.has(id)) return { ok: false, reason: `Invalid trade: ${field}: unknown asset ${id}`, field };
  }
  const market = catalog.marketForPair(baseAsset, quoteAsset);
  if (market === undefined) {
    return { ok: false, reason: `Invalid trade: base_asset/quote_asset: no symbol trades ${baseAsset}/${quoteAsset}`, field: 'base_asset' };
  }
  if (t.symbol !== undefined && t.symbol.toLowerCase() !== market.name) {
    return { ok: false, reason: `Invalid trade: symbol: ${t.symbol} does not match assets ${baseAsset}/${quoteAsset} (${market.name})`, field: 'symbol' };
  }
  const gross = t.price * t.quantity;
  if (gross % market.quoteDivisor !== 0n) {
    return {
      ok: false,
      reason: `Invalid trade: price: price × quantity (${gross}) is not a multiple of the quote divisor ${market.quoteDivisor}`,
      field: 'price',
    };
  }
  const quoteAmount = exactDiv(gross, market.quoteDivisor, 'quote amount');
  if (quoteAmount > I64_MAX) return { ok: false, reason: `Invalid trade: price: quote amount ${quoteAmount} exceeds 2^63-1`, field: 'price' };
  const buyerFee = t.buyer_fee ?? 0n;
  const sellerFee = t.seller_fee ?? 0n;
  if (buyerFee > t.quantity) return { ok: false, reason: `Invalid trade: buyer_fee: ${buyerFee} exceeds quantity ${t.quantity}`, field: 'buyer_fee' };
  if (sellerFee > quoteAmount) return { ok: false, reason: `Invalid trade: seller_fee: ${sellerFee} exceeds quote amount ${quoteAmount}`, field: 'seller_fee' };
  return {
    ok: true,
    message: {
      kind: 'trade',
      shard: market.name,
      tradeId: t.trade_id,
      buyOrderId: t.buy_order_id,
      sellOrderId: t.sell_order_id,
      buyerUserId: t.buyer_user_id,
      sellerUserId: t.seller_user_id,
      price: t.price,
      quantity: t.quantity,
      quoteAmount,
      baseAsset,
      quoteAsset,
      buyerRefund: t.buyer_refund,
      sellerRefund: t.seller_refund,
      buyerFee,
      sellerFee,
      matchSeq: t.match_seq,
      outputSequence: t.output_sequence,
      settledAt: t.settled_at,
      buyerQuoteVersion: t.buyer_quote_version,
      buyerBaseVersion: t.buyer_base_version,
      sellerBaseVersion: t.seller_base_version,
      sellerQuoteVersion: t.seller_quote_version,
    },
  };
}

function fundingFromWire(e: FundingWire, catalog: MarketCatalog): WireParseResult {
  const currency = Number(e.currency);
  if (!catalog.assets.has(currency)) return { ok: false, reason: `Invalid funding event: currency: unknown asset ${currency}`, field: 'currency' };
  return {
    ok: true,
    message: {
      kind: 'funding',
      shard: FUNDING_SHARD,
      userId: e.user_id,
      sequenceId: e.sequence_id,
      eventType: e.event_type,
      amount: e.amount,
      currency,
      relatedId: e.related_id,
      createdAt: e.created_at,
    },
  };
}
