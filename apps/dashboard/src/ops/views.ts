/**
 * What the API and the CLI show for balances and trades: exact minor units (as bigint, written
 * as decimal strings in JSON) plus the asset code and a human-readable decimal.
 */
import { pow10, type MarketCatalog } from '@settlement/domain';
import type { SettledTrade, UserAssetBalance } from '@settlement/scylla';
import { formatMinorUnits } from './amounts.js';

export interface BalanceView {
  readonly assetId: number;
  /** Asset code from config, or "#<id>" for an asset no longer configured. */
  readonly asset: string;
  readonly available: bigint;
  /** Reserved for open orders (the `locked` column). */
  readonly frozen: bigint;
  readonly total: bigint;
  /** The three amounts as decimals in whole units, e.g. "1.50000000". */
  readonly display: { readonly available: string; readonly frozen: string; readonly total: string };
  /** Per shard, the sequence of the last message applied to this balance. */
  readonly asOf: Readonly<Record<string, bigint>>;
}

export function balanceViews(balances: readonly UserAssetBalance[], catalog: MarketCatalog): BalanceView[] {
  return balances.map((b) => {
    const asset = catalog.assets.get(b.assetId);
    const decimals = asset?.decimals ?? 0;
    return {
      assetId: b.assetId,
      asset: asset?.code ?? `#${b.assetId}`,
      available: b.available,
      frozen: b.frozen,
      total: b.total,
      display: {
        available: formatMinorUnits(b.available, decimals),
        frozen: formatMinorUnits(b.frozen, decimals),
        total: formatMinorUnits(b.total, decimals),
      },
      asOf: b.asOf,
    };
  });
}

export interface TradeView extends SettledTrade {
  readonly display: { readonly price: string; readonly quantity: string; readonly quoteAmount: string };
}

export function tradeView(trade: SettledTrade, catalog: MarketCatalog): TradeView {
  const base = catalog.assets.get(trade.baseAsset)?.decimals ?? 0;
  const quote = catalog.assets.get(trade.quoteAsset)?.decimals ?? 0;
  // Price is quote minor units per whole base unit only with the default quote divisor; an
  // engine that sends pre-scaled prices (divisor 1) gets its number back as sent.
  const defaultDivisor = catalog.markets.get(trade.symbol)?.quoteDivisor === pow10(base);
  return {
    ...trade,
    display: {
      price: defaultDivisor ? formatMinorUnits(trade.price, quote) : trade.price.toString(),
      quantity: formatMinorUnits(trade.quantity, base),
      quoteAmount: formatMinorUnits(trade.quoteAmount, quote),
    },
  };
}
