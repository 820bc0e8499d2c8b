/**
 * Reads of the bucketed history (schema/007_history_buckets.cql): a user's buckets come from
 * user_history_buckets, newest first per stream, so empty buckets cost nothing; each bucket is
 * one bounded partition, read page by page.
 */
import type cassandra from 'cassandra-driver';
import { FUNDING_HISTORY_STREAM } from '@settlement/domain';
import { USER_TRADE_COLUMNS, userTradeOfRow } from './settled-trade-row.js';
import { USER_LEDGER_COLUMNS, userLedgerEventOfRow } from './trades.js';

const READ = { prepare: true, isIdempotent: true } as const;
const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;
const PAGE_STATE = /^(?:[0-9a-f]{2}){1,4096}$/;

/**
 * Where a bucketed page goes on: stream `s`, bucket `b` (decimal), from driver page state `ps`
 * within it (null: its first row); `x` 1 when bucket b is read through (go on below it). `l` 'b'
 * tells it from a position on the pre-bucket tables.
 */
export type BucketPosition = { readonly l: 'b'; readonly s: string; readonly b: string; readonly ps: string | null; readonly x: 0 | 1 };

export function isBucketPosition(p: Readonly<Record<string, unknown>> | undefined): boolean {
  return p?.['l'] === 'b';
}

function parsePosition(p: Readonly<Record<string, unknown>> | undefined, streams: readonly string[]): BucketPosition | undefined {
  if (p === undefined || p['l'] !== 'b') return undefined;
  const s = p['s'];
  const b = p['b'];
  const ps = p['ps'];
  if (typeof s !== 'string' || !streams.includes(s) || typeof b !== 'string' || !/^-?\d{1,20}$/.test(b)) return undefined;
  return { l: 'b', s, b, ps: typeof ps === 'string' && PAGE_STATE.test(ps) ? ps : null, x: p['x'] === 1 ? 1 : 0 };
}

export interface BucketedPage<T> {
  readonly items: T[];
  readonly next: BucketPosition | undefined;
}

export class BucketedHistoryReader {
  private readonly cql: Readonly<Record<'newest' | 'below' | 'trades' | 'ledger' | 'all' | 'users', string>>;
  /** Symbols in the order of the pre-bucket history: descending. */
  private readonly symbolsDesc: readonly string[];

  constructor(private readonly client: cassandra.Client, keyspace: string, symbols: readonly string[]) {
    for (const name of [keyspace, ...symbols]) {
      if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
    }
    this.symbolsDesc = [...symbols].sort().reverse();
    this.cql = {
      newest: `SELECT bucket FROM ${keyspace}.user_history_buckets WHERE user_id = ? AND stream = ? LIMIT 1`,
      below: `SELECT bucket FROM ${keyspace}.user_history_buckets WHERE user_id = ? AND stream = ? AND bucket < ? LIMIT 1`,
      trades: `SELECT ${USER_TRADE_COLUMNS.join(', ')} FROM ${keyspace}.user_trades WHERE user_id = ? AND symbol = ? AND bucket = ?`,
      ledger: `SELECT ${USER_LEDGER_COLUMNS} FROM ${keyspace}.user_ledger WHERE user_id = ? AND bucket = ?`,
      all: `SELECT stream, bucket FROM ${keyspace}.user_history_buckets WHERE user_id = ?`,
      users: `SELECT DISTINCT user_id, token(user_id) AS t FROM ${keyspace}.user_history_buckets WHERE token(user_id) > ? AND token(user_id) <= ? LIMIT ?`,
    };
  }

  /** A page of a user's trades: by symbol (descending), newest first within a symbol. */
  tradesPage(userId: bigint, request: { symbol?: string | undefined; limit: number; scanRowsMax: number; keep: (row: ReturnType<typeof userTradeOfRow>) => boolean; position?: Readonly<Record<string, unknown>> | undefined }) {
    const streams = request.symbol === undefined ? this.symbolsDesc : [request.symbol];
    return this.page(userId, streams, request, (s, b) => [this.cql.trades, [userId, s, b]], userTradeOfRow, request.keep);
  }

  /** A page of a user's funding events, newest first. */
  ledgerPage(userId: bigint, request: { limit: number; scanRowsMax: number; position?: Readonly<Record<string, unknown>> | undefined }) {
    return this.page(userId, [FUNDING_HISTORY_STREAM], request, (_s, b) => [this.ledgerCql(), [userId, b]], userLedgerEventOfRow, () => true);
  }

  private ledgerCql(): string {
    return this.cql.ledger;
  }

  private async page<T>(
    userId: bigint,
    streams: readonly string[],
    request: { limit: number; scanRowsMax: number; position?: Readonly<Record<string, unknown>> | undefined },
    query: (stream: string, bucket: bigint) => [string, unknown[]],
    map: (row: cassandra.types.Row) => T,
    keep: (item: T) => boolean,
  ): Promise<BucketedPage<T>> {
    const items: T[] = [];
    let at: BucketPosition | undefined = parsePosition(request.position, streams) ?? (await this.firstIn(userId, streams, 0));
    let scanned = 0;
    while (at !== undefined && items.length < request.limit && scanned < request.scanRowsMax) {
      if (at.x === 1) {
        at = await this.after(userId, streams, at);
        scanned += 1;
        continue;
      }
      const [cql, params] = query(at.s, BigInt(at.b));
      const want = request.limit - items.length;
      const result = await this.client.execute(cql, params, { ...READ, fetchSize: want, pageState: at.ps ?? undefined });
      scanned += result.rows.length;
      for (const row of result.rows) {
        const item = map(row);
        if (keep(item)) items.push(item);
      }
      at = result.pageState ? { ...at, ps: result.pageState } : { ...at, ps: null, x: 1 };
    }
    // A bucket read through: say now whether anything follows, so the last page has no next.
    if (at !== undefined && at.x === 1 && items.length > 0) at = await this.after(userId, streams, at);
    return { items, next: at };
  }

  /** The first non-empty bucket of streams[from..]. */
  private async firstIn(userId: bigint, streams: readonly string[], from: number): Promise<BucketPosition | undefined> {
    for (let i = from; i < streams.length; i++) {
      const row = (await this.client.execute(this.cql.newest, [userId, streams[i]], READ)).first();
      if (row !== null) return { l: 'b', s: streams[i]!, b: (row['bucket'] as bigint).toString(), ps: null, x: 0 };
    }
    return undefined;
  }

  private async after(userId: bigint, streams: readonly string[], at: BucketPosition): Promise<BucketPosition | undefined> {
    const row = (await this.client.execute(this.cql.below, [userId, at.s, BigInt(at.b)], READ)).first();
    if (row !== null) return { l: 'b', s: at.s, b: (row['bucket'] as bigint).toString(), ps: null, x: 0 };
    return this.firstIn(userId, streams, streams.indexOf(at.s) + 1);
  }

  /**
   * Every history row of a user, bucket by bucket, each bucket page by page (`fetchSize` rows):
   * memory holds a page of the index and a page of rows, whatever the history's length.
   * `kind` picks trades (every symbol) or funding events.
   */
  async *rows(userId: bigint, kind: 'trades' | 'funding', columns: string, fetchSize: number, keyspace: string): AsyncGenerator<cassandra.types.Row> {
    const index = await this.client.execute(this.cql.all, [userId], { ...READ, fetchSize });
    for await (const entry of index) {
      const stream = entry['stream'] as string;
      const bucket = entry['bucket'] as bigint;
      const funding = stream === FUNDING_HISTORY_STREAM;
      if (funding !== (kind === 'funding')) continue;
      const [cql, params] = funding
        ? [`SELECT ${columns} FROM ${keyspace}.user_ledger WHERE user_id = ? AND bucket = ?`, [userId, bucket]]
        : [`SELECT ${columns} FROM ${keyspace}.user_trades WHERE user_id = ? AND symbol = ? AND bucket = ?`, [userId, stream, bucket]];
      const result = await this.client.execute(cql, params, { ...READ, fetchSize });
      for await (const row of result) yield row;
    }
  }

  /** Users with bucketed history whose token is in (afterToken, upToToken], `pageSize` at a time. */
  async usersInRange(afterToken: bigint, upToToken: bigint, pageSize: number): Promise<bigint[]> {
    const users: bigint[] = [];
    let after = afterToken;
    for (;;) {
      const result = await this.client.execute(this.cql.users, [after, upToToken, pageSize], { ...READ, fetchSize: pageSize });
      for (const row of result.rows) users.push(row['user_id'] as bigint);
      if (result.rows.length < pageSize) return users;
      after = result.rows[result.rows.length - 1]!['t'] as bigint;
    }
  }
}
