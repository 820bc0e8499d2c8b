/**
 * Best-effort shard of a message that failed validation, so its dead letter is filed under the
 * shard it would have belonged to. Only asset ids and the message kind are looked at; anything
 * unclear yields undefined (the caller files it as unrouted).
 */
import type { MarketCatalog } from './catalog.js';
import { FUNDING_SHARD } from './catalog.js';

export function shardOfRawMessage(text: string, catalog: MarketCatalog): string | undefined {
  let raw: unknown;
  try {
    // Plain JSON.parse is enough here: asset ids are small, and amounts are not read.
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const fields = raw as Record<string, unknown>;
  if ('event_type' in fields && !('trade_id' in fields)) return FUNDING_SHARD;
  if (!('trade_id' in fields)) return undefined;
  const base = fields['base_asset'];
  const quote = fields['quote_asset'];
  if (typeof base === 'number' && typeof quote === 'number') {
    const market = catalog.marketForPair(base, quote);
    if (market !== undefined) return market.name;
  }
  const symbol = fields['symbol'];
  if (typeof symbol === 'string' && catalog.markets.has(symbol.toLowerCase())) return symbol.toLowerCase();
  return undefined;
}
