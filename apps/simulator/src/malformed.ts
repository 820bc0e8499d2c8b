/**
 * Malformed messages the simulator can inject, one per kind of mistake an engine (or a broken
 * network hop) can make. Each names the field the ingestor's validation must report.
 */
import type { CatalogInput } from '@settlement/domain';
import { FUNDING_SHARD, MarketCatalog } from '@settlement/domain';
import type { Rng } from './rng.js';

export const MALFORMED_KINDS = [
  'not_json',
  'missing_field',
  'wrong_type',
  'negative',
  'fractional',
  'above_u64',
  'unknown_asset',
  'inexact_quote',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export interface MalformedMessage {
  readonly kind: MalformedKind;
  /** The field the rejection must name ("(root)" when the frame is not a JSON object). */
  readonly field: string;
  /** Shard its dead letter belongs to ("unrouted" when it cannot be routed). */
  readonly shard: string;
  readonly raw: string;
}

export function buildMalformed(kind: MalformedKind, market: CatalogInput, rng: Rng, sentAtMs = 1_700_000_000_000): MalformedMessage {
  const catalog = new MarketCatalog(market);
  const markets = [...catalog.markets.values()];
  const m = rng.pick(markets);
  const user = BigInt(rng.int(1, 1_000_000));
  const trade: Record<string, string> = {
    trade_id: String(rng.int(1, 2 ** 31)),
    buy_order_id: '1', sell_order_id: '2', buyer_user_id: String(user), seller_user_id: String(user + 1n),
    price: String(m.quoteDivisor * BigInt(rng.int(1, 1000))), quantity: String(rng.int(1, 10_000)),
    base_asset: String(m.baseAsset), quote_asset: String(m.quoteAsset), buyer_refund: '0', seller_refund: '0',
    match_seq: '1', output_sequence: '0', settled_at: String(sentAtMs),
    buyer_quote_version: '1', buyer_base_version: '1', seller_base_version: '1', seller_quote_version: '1',
  };
  const asset = [...catalog.assets.keys()][0]!;
  const funding: Record<string, string> = {
    user_id: String(user), sequence_id: '0', event_type: '"DEPOSIT"', amount: '100', currency: String(asset), related_id: '1', created_at: String(sentAtMs),
  };
  const json = (fields: Record<string, string>) => `{${Object.entries(fields).map(([k, v]) => `"${k}":${v}`).join(',')}}`;
  switch (kind) {
    case 'not_json':
      return { kind, field: '(root)', shard: 'unrouted', raw: `${json(trade).slice(0, 40)} <truncated` };
    case 'missing_field': {
      const { quantity: _omit, ...rest } = trade;
      return { kind, field: 'quantity', shard: m.name, raw: json(rest) };
    }
    case 'wrong_type':
      return { kind, field: 'price', shard: m.name, raw: json({ ...trade, price: '"sixty"' }) };
    case 'negative':
      return { kind, field: 'buyer_refund', shard: m.name, raw: json({ ...trade, buyer_refund: '-5' }) };
    case 'fractional':
      return { kind, field: 'amount', shard: FUNDING_SHARD, raw: json({ ...funding, amount: '1.5' }) };
    case 'above_u64':
      return { kind, field: 'trade_id', shard: m.name, raw: json({ ...trade, trade_id: '18446744073709551616' }) };
    case 'unknown_asset': {
      const unknown = Math.max(...catalog.assets.keys()) + 100;
      return { kind, field: 'currency', shard: FUNDING_SHARD, raw: json({ ...funding, currency: String(unknown) }) };
    }
    case 'inexact_quote': {
      // price × quantity must be a multiple of the divisor; divisor + 1 with quantity 1 never is.
      if (m.quoteDivisor <= 1n) return buildMalformed('negative', market, rng, sentAtMs);
      return { kind, field: 'price', shard: m.name, raw: json({ ...trade, price: String(m.quoteDivisor + 1n), quantity: '1' }) };
    }
  }
}
