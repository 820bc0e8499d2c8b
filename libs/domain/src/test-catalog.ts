import { MarketCatalog, type CatalogInput } from './catalog.js';

/** The markets of config/settlement.yaml, for unit tests without reading files. */
export function testCatalogInput(feeAccountUserId = 0n): CatalogInput {
  return {
    assets: [
      { id: 1, code: 'BTC', decimals: 8 },
      { id: 2, code: 'USDT', decimals: 6 },
      { id: 3, code: 'ETH', decimals: 8 },
    ],
    symbols: [
      { name: 'btc_usdt', base: 1, quote: 2 },
      { name: 'eth_usdt', base: 3, quote: 2 },
      { name: 'btc_eth', base: 1, quote: 3 },
    ],
    fee_account_user_id: feeAccountUserId,
  };
}

export function testCatalog(feeAccountUserId = 0n): MarketCatalog {
  return new MarketCatalog(testCatalogInput(feeAccountUserId));
}
