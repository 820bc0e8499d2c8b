/**
 * A user's history, page by page, newest first, for the API and the CLI: trades (one row per
 * side the user took) and funding events. A page holds at most `limit` rows and costs a bounded
 * number of reads (`scanRowsMax`): rows outside a time range are read and skipped, so a page can
 * come back short with a position to go on from.
 */
import type cassandra from 'cassandra-driver';
import type { UserTrade } from './settled-trade-row.js';
import { TradeRepository, type UserLedgerEvent } from './trades.js';
import { BucketedHistoryReader, isBucketPosition } from './bucketed-history.js';
import { HistoryLayoutFlag, HistoryLayoutRepository } from './history-layout.js';

/** Where the next page starts; opaque to callers (JSON-safe: strings, numbers and null only). */
export type HistoryPosition = Readonly<Record<string, string | number | null>>;

export interface HistoryPageRequest {
  readonly limit: number;
  /** From the previous page's `next`; omit for the first page. */
  readonly position?: HistoryPosition | undefined;
}

export interface TradeHistoryRequest extends HistoryPageRequest {
  readonly symbol?: string | undefined;
  /** Inclusive lower bound on settled_at, ms. */
  readonly fromMs?: bigint | undefined;
  /** Inclusive upper bound on settled_at, ms. */
  readonly toMs?: bigint | undefined;
}

export interface HistoryPage<T> {
  readonly items: T[];
  /** Undefined after the last page. */
  readonly next: HistoryPosition | undefined;
}

export interface UserHistoryReaderOptions {
  /** Most rows one page may read (kept or skipped by the time range). Default 10 000. */
  readonly scanRowsMax?: number;
  /** Whether the bucketed tables are read (default: the keyspace's history_migration, cached 10 s). */
  readonly layout?: HistoryLayoutFlag | undefined;
}

const inRange = (t: bigint, from: bigint | undefined, to: bigint | undefined): boolean => (from === undefined || t >= from) && (to === undefined || t <= to);

export class UserHistoryReader {
  private readonly trades: TradeRepository;
  private readonly scanRowsMax: number;
  private readonly bucketed: BucketedHistoryReader;
  private readonly layout: HistoryLayoutFlag;

  constructor(client: cassandra.Client, keyspace: string, symbols: readonly string[], options: UserHistoryReaderOptions = {}) {
    this.trades = new TradeRepository(client, keyspace, symbols);
    this.scanRowsMax = options.scanRowsMax ?? 10_000;
    this.bucketed = new BucketedHistoryReader(client, keyspace, symbols);
    this.layout = options.layout ?? new HistoryLayoutFlag(new HistoryLayoutRepository(client, keyspace));
  }

  /** A position made on one layout goes on there; a first page reads the current one. */
  private async readsBuckets(p: HistoryPosition | undefined): Promise<boolean> {
    return p === undefined ? this.layout.bucketed() : isBucketPosition(p);
  }

  async tradesPage(userId: bigint, request: TradeHistoryRequest): Promise<HistoryPage<UserTrade>> {
    if (await this.readsBuckets(request.position)) {
      const keep = (row: UserTrade): boolean => inRange(row.settledAt, request.fromMs, request.toMs);
      return this.bucketed.tradesPage(userId, { symbol: request.symbol, limit: request.limit, scanRowsMax: this.scanRowsMax, keep, position: request.position });
    }
    const items: UserTrade[] = [];
    let pageState = position(request.position);
    let scanned = 0;
    do {
      // Never more than the page still needs: the driver's page state then marks exactly the
      // last row looked at, kept or skipped.
      const want = request.limit - items.length;
      const page = await this.trades.listUserTrades(userId, { limit: want, pageState, symbol: request.symbol });
      scanned += page.items.length;
      for (const row of page.items) if (inRange(row.settledAt, request.fromMs, request.toMs)) items.push(row);
      pageState = page.pageState;
    } while (pageState !== undefined && items.length < request.limit && scanned < this.scanRowsMax);
    return { items, next: pageState === undefined ? undefined : { ps: pageState } };
  }

  async ledgerPage(userId: bigint, request: HistoryPageRequest): Promise<HistoryPage<UserLedgerEvent>> {
    if (await this.readsBuckets(request.position)) {
      return this.bucketed.ledgerPage(userId, { limit: request.limit, scanRowsMax: this.scanRowsMax, position: request.position });
    }
    const page = await this.trades.listUserLedgerEvents(userId, { limit: request.limit, pageState: position(request.position) });
    return { items: page.items, next: page.pageState === undefined ? undefined : { ps: page.pageState } };
  }
}

function position(p: HistoryPosition | undefined): string | undefined {
  const ps = p?.['ps'];
  // The driver's page state is hex; anything else was not made by this reader.
  return typeof ps === 'string' && /^(?:[0-9a-f]{2}){1,4096}$/.test(ps) ? ps : undefined;
}
