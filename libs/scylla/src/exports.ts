/**
 * Reads for `settle export`: every settled trade of a symbol, every balance row, page by page in
 * token order (see table-scan.ts). u64 columns come back through u64FromCql; nothing is held
 * beyond one page.
 */
import type cassandra from 'cassandra-driver';
import { SETTLED_TRADE_COLUMNS, settledTradeOfRow, type SettledTrade } from './settled-trade-row.js';
import { scanTable, type ScanOptions } from './table-scan.js';
import { storedBalanceRowOf, type StoredBalanceRow } from './balances.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;

export interface ExportPage<T> {
  readonly items: T[];
  readonly pageState: string | undefined;
  readonly lastToken: bigint | undefined;
  /** Rows read from Cassandra for this page (before any filter of the caller). */
  readonly rowsRead: number;
}

export class ExportReader {
  private readonly tradesCql: ReadonlyMap<string, string>;
  private readonly balancesCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string, symbols: readonly string[]) {
    for (const name of [keyspace, ...symbols]) {
      if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
    }
    this.tradesCql = new Map(symbols.map((s) => [s, `SELECT token(trade_id) AS t, ${SETTLED_TRADE_COLUMNS.join(', ')} FROM ${keyspace}.settled_trades_${s}`]));
    this.balancesCql = `SELECT token(user_id) AS t, user_id, asset_id, shard, available, locked, version FROM ${keyspace}.user_balances`;
  }

  async *trades(symbol: string, options: ScanOptions): AsyncGenerator<ExportPage<SettledTrade>> {
    const cql = this.tradesCql.get(symbol);
    if (cql === undefined) throw new Error(`unknown symbol ${JSON.stringify(symbol)}`);
    for await (const page of scanTable(this.client, cql, [], options)) {
      yield {
        items: page.rows.map((row) => settledTradeOfRow(symbol, row)),
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
        items: page.rows.map(storedBalanceRowOf),
        pageState: page.pageState,
        lastToken: page.lastToken,
        rowsRead: page.rows.length,
      };
    }
  }
}
