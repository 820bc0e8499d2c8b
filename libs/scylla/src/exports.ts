/**
 * Reads for `settle export`: every settled trade of a symbol, every balance row, page by page in
 * token order (see table-scan.ts). u64 columns come back through u64FromCql; nothing is held
 * beyond one page.
 */
import type cassandra from 'cassandra-driver';
import { u64FromCql } from './client.js';
import type { SettledTrade } from './trades.js';
import { scanTable, type ScanOptions } from './table-scan.js';
import type { StoredBalanceRow } from './balances.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;

export interface ExportPage<T> {
  readonly items: T[];
  readonly pageState: string | undefined;
  readonly lastToken: bigint | undefined;
  /** Rows read from Cassandra for this page (before any filter of the caller). */
  readonly rowsRead: number;
}

const TRADE_COLUMNS =
  'trade_id, seq, buy_order_id, sell_order_id, buyer_user_id, seller_user_id, price, quantity, quote_amount, base_asset, quote_asset, ' +
  'buyer_refund, seller_refund, buyer_fee, seller_fee, match_seq, output_sequence, settled_at, buyer_quote_version, buyer_base_version, seller_base_version, seller_quote_version';

const big = (row: cassandra.types.Row, column: string): bigint => (row[column] as bigint | null) ?? 0n;
const u64 = (row: cassandra.types.Row, column: string): bigint => u64FromCql(big(row, column));

export class ExportReader {
  private readonly tradesCql: ReadonlyMap<string, string>;
  private readonly balancesCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string, symbols: readonly string[]) {
    for (const name of [keyspace, ...symbols]) {
      if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
    }
    this.tradesCql = new Map(symbols.map((s) => [s, `SELECT token(trade_id) AS t, ${TRADE_COLUMNS} FROM ${keyspace}.settled_trades_${s}`]));
    this.balancesCql = `SELECT token(user_id) AS t, user_id, asset_id, shard, available, locked, version FROM ${keyspace}.user_balances`;
  }

  async *trades(symbol: string, options: ScanOptions): AsyncGenerator<ExportPage<SettledTrade>> {
    const cql = this.tradesCql.get(symbol);
    if (cql === undefined) throw new Error(`unknown symbol ${JSON.stringify(symbol)}`);
    for await (const page of scanTable(this.client, cql, [], options)) {
      yield {
        items: page.rows.map((row) => ({
          symbol,
          tradeId: u64(row, 'trade_id'),
          seq: big(row, 'seq'),
          buyOrderId: u64(row, 'buy_order_id'),
          sellOrderId: u64(row, 'sell_order_id'),
          buyerUserId: big(row, 'buyer_user_id'),
          sellerUserId: big(row, 'seller_user_id'),
          price: big(row, 'price'),
          quantity: big(row, 'quantity'),
          quoteAmount: big(row, 'quote_amount'),
          baseAsset: row['base_asset'] as number,
          quoteAsset: row['quote_asset'] as number,
          buyerRefund: big(row, 'buyer_refund'),
          sellerRefund: big(row, 'seller_refund'),
          buyerFee: big(row, 'buyer_fee'),
          sellerFee: big(row, 'seller_fee'),
          matchSeq: u64(row, 'match_seq'),
          outputSequence: u64(row, 'output_sequence'),
          settledAt: u64(row, 'settled_at'),
          buyerQuoteVersion: u64(row, 'buyer_quote_version'),
          buyerBaseVersion: u64(row, 'buyer_base_version'),
          sellerBaseVersion: u64(row, 'seller_base_version'),
          sellerQuoteVersion: u64(row, 'seller_quote_version'),
        })),
        pageState: page.pageState,
        lastToken: page.lastToken,
        rowsRead: page.rows.length,
      };
    }
  }

  /** Every (user, asset, shard) contribution row with its version (the shard sequence it is as of). */
  async *balances(options: ScanOptions): AsyncGenerator<ExportPage<StoredBalanceRow>> {
    for await (const page of scanTable(this.client, this.balancesCql, [], options)) {
      yield {
        items: page.rows.map((row) => ({
          userId: big(row, 'user_id'),
          assetId: row['asset_id'] as number,
          shard: row['shard'] as string,
          available: big(row, 'available'),
          locked: big(row, 'locked'),
          version: big(row, 'version'),
        })),
        pageState: page.pageState,
        lastToken: page.lastToken,
        rowsRead: page.rows.length,
      };
    }
  }
}
