/**
 * Reads of settled trades and of the per-user query tables written in the same batches.
 * u64 ids come back through u64FromCql.
 */
import type cassandra from 'cassandra-driver';
import type { FundingEventType, FundingMessage } from '@settlement/domain';
import { u64ToCql } from './client.js';
import { USER_TRADE_COLUMNS, bigintOf as big, settledTradeOfRow, u64Of as u64, userTradeOfRow, type SettledTrade, type UserTrade } from './settled-trade-row.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;

/** A row of ledger_events_by_user: the funding message as settled (its shard is always funding). */
export type UserLedgerEvent = Omit<FundingMessage, 'kind' | 'shard'>;

/** The columns of user_ledger (and ledger_events_by_user) a history page reads. */
export const USER_LEDGER_COLUMNS = 'user_id, seq, sequence_id, event_type, amount, currency, related_id, created_at';

/** A row of user_ledger (or ledger_events_by_user) as the history API shows it. */
export function userLedgerEventOfRow(row: cassandra.types.Row): UserLedgerEvent {
  return {
    userId: big(row, 'user_id'),
    seq: big(row, 'seq'),
    sequenceId: big(row, 'sequence_id'),
    eventType: row['event_type'] as FundingEventType,
    amount: big(row, 'amount'),
    currency: row['currency'] as number,
    relatedId: u64(row, 'related_id'),
    createdAt: u64(row, 'created_at'),
  };
}

export interface PageRequest {
  /** Rows per page. */
  readonly limit: number;
  /** From the previous page's `pageState`; omit for the first page. */
  readonly pageState?: string | undefined;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass back for the next page; undefined on the last page. */
  readonly pageState: string | undefined;
}

export class TradeRepository {
  private readonly tradeCql: ReadonlyMap<string, string>;
  private readonly seqsCql: ReadonlyMap<string, string>;
  private readonly userTradesCql: string;
  private readonly userSymbolTradesCql: string;
  private readonly userLedgerCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string, symbols: readonly string[]) {
    for (const name of [keyspace, ...symbols]) {
      if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
    }
    const ks = keyspace;
    this.tradeCql = new Map(symbols.map((s) => [s, `SELECT * FROM ${ks}.settled_trades_${s} WHERE trade_id = ?`]));
    this.seqsCql = new Map(symbols.map((s) => [s, `SELECT trade_id, seq FROM ${ks}.settled_trades_${s} WHERE trade_id IN ?`]));
    const userColumns = USER_TRADE_COLUMNS.join(', ');
    this.userTradesCql = `SELECT ${userColumns} FROM ${ks}.trades_by_user WHERE user_id = ? ORDER BY symbol DESC, seq DESC, side DESC`;
    this.userSymbolTradesCql = `SELECT ${userColumns} FROM ${ks}.trades_by_user WHERE user_id = ? AND symbol = ? ORDER BY symbol DESC, seq DESC, side DESC`;
    this.userLedgerCql = `SELECT ${USER_LEDGER_COLUMNS} FROM ${ks}.ledger_events_by_user WHERE user_id = ? ORDER BY seq DESC`;
  }

  private table(map: ReadonlyMap<string, string>, symbol: string): string {
    const cql = map.get(symbol);
    if (cql === undefined) throw new Error(`unknown symbol ${JSON.stringify(symbol)}`);
    return cql;
  }

  async getTrade(symbol: string, tradeId: bigint): Promise<SettledTrade | undefined> {
    const result = await this.client.execute(this.table(this.tradeCql, symbol), [u64ToCql(tradeId)], { prepare: true, isIdempotent: true });
    const row = result.first();
    return row === null ? undefined : settledTradeOfRow(symbol, row);
  }

  /**
   * trade_id → seq of those of `tradeIds` already settled on `symbol`: one `IN` read, the
   * settler's duplicate check for a whole batch.
   */
  async findSettledSeqs(symbol: string, tradeIds: readonly bigint[]): Promise<Map<bigint, bigint>> {
    const found = new Map<bigint, bigint>();
    if (tradeIds.length === 0) return found;
    const result = await this.client.execute(this.table(this.seqsCql, symbol), [tradeIds.map(u64ToCql)], { prepare: true, isIdempotent: true, fetchSize: tradeIds.length + 1 });
    for (const row of result.rows) found.set(u64(row, 'trade_id'), big(row, 'seq'));
    return found;
  }

  /** A user's trades, one row per party they took: by symbol (descending), newest first within a symbol. */
  async listUserTrades(userId: bigint, options: PageRequest & { symbol?: string | undefined }): Promise<Page<UserTrade>> {
    const [cql, params] = options.symbol === undefined ? [this.userTradesCql, [userId]] : [this.userSymbolTradesCql, [userId, options.symbol]];
    const result = await this.client.execute(cql, params, { prepare: true, isIdempotent: true, fetchSize: options.limit, pageState: options.pageState });
    return {
      items: result.rows.map(userTradeOfRow),
      pageState: result.pageState ?? undefined,
    };
  }

  /** A user's deposits, withdrawals, locks and unlocks, newest first. */
  async listUserLedgerEvents(userId: bigint, options: PageRequest): Promise<Page<UserLedgerEvent>> {
    const result = await this.client.execute(this.userLedgerCql, [userId], { prepare: true, isIdempotent: true, fetchSize: options.limit, pageState: options.pageState });
    return {
      items: result.rows.map(userLedgerEventOfRow),
      pageState: result.pageState ?? undefined,
    };
  }
}
