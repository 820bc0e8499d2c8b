/**
 * The markets the service settles: assets, symbols and the shards they map to. Built once from
 * validated config; pure lookups afterwards.
 */
import { DomainError } from './domain-error.js';
import { pow10 } from './money.js';

export interface Asset {
  readonly id: number;
  readonly code: string;
  readonly decimals: number;
}

export interface Market {
  /** Symbol name, also the shard name and the suffix of its trade table. */
  readonly name: string;
  readonly baseAsset: number;
  readonly quoteAsset: number;
  /** quote amount = price × quantity / quoteDivisor. */
  readonly quoteDivisor: bigint;
}

/** The one shard for deposits, withdrawals, locks and unlocks. */
export const FUNDING_SHARD = 'funding';

export interface CatalogInput {
  readonly assets: ReadonlyArray<{ id: number; code: string; decimals: number }>;
  readonly symbols: ReadonlyArray<{ name: string; base: number; quote: number; quote_divisor?: bigint | undefined }>;
  readonly fee_account_user_id: bigint;
}

export class MarketCatalog {
  readonly assets: ReadonlyMap<number, Asset>;
  readonly markets: ReadonlyMap<string, Market>;
  readonly feeAccountUserId: bigint;
  private readonly marketByPair: ReadonlyMap<string, Market>;

  constructor(input: CatalogInput) {
    this.assets = new Map(input.assets.map((a) => [a.id, { id: a.id, code: a.code, decimals: a.decimals }]));
    const markets = new Map<string, Market>();
    const byPair = new Map<string, Market>();
    for (const symbol of input.symbols) {
      const base = this.assets.get(symbol.base);
      if (base === undefined) throw new DomainError('UNKNOWN_ASSET', `symbol ${symbol.name}: base asset ${symbol.base} is not configured`);
      const market: Market = {
        name: symbol.name,
        baseAsset: symbol.base,
        quoteAsset: symbol.quote,
        quoteDivisor: symbol.quote_divisor ?? pow10(base.decimals),
      };
      markets.set(market.name, market);
      byPair.set(`${market.baseAsset}/${market.quoteAsset}`, market);
    }
    this.markets = markets;
    this.marketByPair = byPair;
    this.feeAccountUserId = input.fee_account_user_id;
  }

  /** Every shard: one per symbol, then the funding shard. */
  get shards(): string[] {
    return [...this.markets.keys(), FUNDING_SHARD];
  }

  marketForPair(baseAsset: number, quoteAsset: number): Market | undefined {
    return this.marketByPair.get(`${baseAsset}/${quoteAsset}`);
  }

  market(name: string): Market {
    const market = this.markets.get(name);
    if (market === undefined) throw new DomainError('UNKNOWN_SYMBOL', `unknown symbol ${name}`, 'symbol');
    return market;
  }

  isShard(name: string): boolean {
    return name === FUNDING_SHARD || this.markets.has(name);
  }
}
