/**
 * A user's trade history page of 100 rows, the service's way and the raw way, alternating, as
 * balance-queries.ts does for balances:
 *
 *  - service: `userTradesPage` (apps/dashboard/src/ops/history.ts), in process, with the
 *    parameters `GET /v1/users/:id/trades?limit=100` and `settle history <user>` pass: the query
 *    validated, UserHistoryReader.tradesPage (the layout flag, cached; the user's newest bucket
 *    from user_history_buckets; one page of that bucket's partition) and each row's view;
 *  - raw: the plain prepared `SELECT … FROM user_trades WHERE user_id = ? AND symbol = ? AND
 *    bucket = ? LIMIT 100` of the partition that page reads, its bucket looked up once beforehand.
 *
 * The users are the ones with the most history rows in the stream sent so far (the fee account
 * first: one row per trade that pays a fee), kept when the partition the service reads first
 * holds at least a page: then both paths return the same 100 rows. When no user has that many
 * (a short stream without fees), the users whose first partition holds the most are used and
 * `rowsPerPage` shows that the service went on into further partitions.
 */
import type cassandra from 'cassandra-driver';
import type { MarketCatalog } from '@settlement/domain';
import { userTradesPage } from '@settlement/dashboard';
import { USER_TRADE_COLUMNS, UserHistoryReader } from '@settlement/scylla';
import type { SimMessage } from '@settlement/simulator';
import { LatencyRecorder, round } from './latency.js';

/** Rows of the page both paths read. */
export const HISTORY_PAGE_ROWS = 100;
/** Users looked at, by history rows in the stream (the fee account on top). */
const CANDIDATES_MAX = 200;
/** Users measured when none holds a whole page in one partition. */
const FALLBACK_USERS_MAX = 20;

const READ = { prepare: true, isIdempotent: true } as const;

export interface HistoryTarget {
  readonly userId: bigint;
  /** The partition the service's first page starts in: user_trades (user, symbol, bucket). */
  readonly symbol: string;
  readonly bucket: bigint;
  /** Rows in that partition, up to a page. */
  readonly rows: number;
}

export interface HistoryQueryResult {
  readonly service: ReturnType<LatencyRecorder['summary']>;
  readonly raw: ReturnType<LatencyRecorder['summary']>;
  /** service p99 / raw p99. */
  readonly p99Ratio: number;
  /** Users measured (their pages taken in turn). */
  readonly users: number;
  /** Mean rows a page returned: equal when every user's first partition holds a page. */
  readonly rowsPerPage: { readonly service: number; readonly raw: number };
}

/** History rows per user in the messages sent so far: one per side taken, the fee account one per trade with a fee. */
export function historyRowsByUser(messages: readonly SimMessage[], sentSoFar: number, feeAccountUserId: bigint): Map<bigint, number> {
  const rows = new Map<bigint, number>();
  const add = (user: bigint) => rows.set(user, (rows.get(user) ?? 0) + 1);
  for (let i = 0; i < Math.min(sentSoFar, messages.length); i++) {
    const m = messages[i]!;
    if (m.kind !== 'trade') continue;
    const parties = /"buyer_user_id":(\d+),"seller_user_id":(\d+)/.exec(m.head);
    if (parties === null) continue;
    add(BigInt(parties[1]!));
    add(BigInt(parties[2]!));
    if (/"(?:buyer|seller)_fee":[1-9]/.test(m.head)) add(feeAccountUserId);
  }
  return rows;
}

/**
 * The users to page through (see the top): looked up once, untimed. For each candidate, the
 * stream the service reads first (symbols in descending order, as UserHistoryReader does), its
 * newest bucket, and how many rows that partition holds up to a page.
 */
export async function pickHistoryTargets(client: cassandra.Client, keyspace: string, symbols: readonly string[], rowsByUser: ReadonlyMap<bigint, number>): Promise<HistoryTarget[]> {
  const candidates = [...rowsByUser.entries()].sort((a, b) => b[1] - a[1]).slice(0, CANDIDATES_MAX).map(([user]) => user);
  const newest = `SELECT bucket FROM ${keyspace}.user_history_buckets WHERE user_id = ? AND stream = ? LIMIT 1`;
  const count = `SELECT seq FROM ${keyspace}.user_trades WHERE user_id = ? AND symbol = ? AND bucket = ? LIMIT ${HISTORY_PAGE_ROWS}`;
  const symbolsDesc = [...symbols].sort().reverse();
  const targets: HistoryTarget[] = [];
  for (const userId of candidates) {
    for (const symbol of symbolsDesc) {
      const row = (await client.execute(newest, [userId, symbol], READ)).first();
      if (row === null) continue;
      const bucket = row['bucket'] as bigint;
      const rows = (await client.execute(count, [userId, symbol, bucket], { ...READ, fetchSize: HISTORY_PAGE_ROWS })).rows.length;
      targets.push({ userId, symbol, bucket, rows });
      break;
    }
  }
  const full = targets.filter((t) => t.rows >= HISTORY_PAGE_ROWS);
  return full.length > 0 ? full : targets.sort((a, b) => b.rows - a.rows).slice(0, FALLBACK_USERS_MAX);
}

/**
 * Alternates the service's history page with the raw read of the same partition, one at a time
 * (which goes first alternates too), so both see the same load; paced with `pairsPerS`, else
 * back to back.
 */
export async function measureHistoryQueries(options: {
  client: cassandra.Client;
  keyspace: string;
  catalog: MarketCatalog;
  targets: readonly HistoryTarget[];
  /** Stop after this long, ms. */
  durationMs: number;
  /** Or after this many pairs. */
  pairsMax: number;
  /** Pairs started per second; undefined: back to back. */
  pairsPerS?: number;
  signal?: AbortSignal;
}): Promise<HistoryQueryResult | undefined> {
  const { client, catalog, targets } = options;
  if (targets.length === 0) return undefined;
  // What historyReaderOf(ops) builds for the API and the CLI.
  const reader = new UserHistoryReader(client, options.keyspace, [...catalog.markets.keys()]);
  const rawCql = `SELECT ${USER_TRADE_COLUMNS} FROM ${options.keyspace}.user_trades WHERE user_id = ? AND symbol = ? AND bucket = ? LIMIT ${HISTORY_PAGE_ROWS}`;
  const query = { limit: String(HISTORY_PAGE_ROWS) };
  const servicePage = async (t: HistoryTarget) => (await userTradesPage(reader, catalog, t.userId, query, 'request')).items.length;
  const rawPage = async (t: HistoryTarget) => (await client.execute(rawCql, [t.userId, t.symbol, t.bucket], { ...READ, fetchSize: HISTORY_PAGE_ROWS })).rows.length;
  const service = new LatencyRecorder();
  const raw = new LatencyRecorder();
  let serviceRows = 0;
  let rawRows = 0;
  // Warm both paths (preparing, connections, the layout flag) before measuring.
  for (const t of targets.slice(0, 20)) {
    await servicePage(t);
    await rawPage(t);
  }
  const deadline = performance.now() + options.durationMs;
  const started = performance.now();
  let i = 0;
  while (performance.now() < deadline && i < options.pairsMax && !options.signal?.aborted) {
    if (options.pairsPerS !== undefined) {
      const dueMs = started + (i * 1000) / options.pairsPerS - performance.now();
      if (dueMs > 0) await new Promise((resolve) => setTimeout(resolve, dueMs));
    }
    const target = targets[i % targets.length]!;
    for (const which of i % 2 === 0 ? ['service', 'raw'] : ['raw', 'service']) {
      const queryStarted = performance.now();
      if (which === 'service') {
        serviceRows += await servicePage(target);
        service.recordMs(performance.now() - queryStarted);
      } else {
        rawRows += await rawPage(target);
        raw.recordMs(performance.now() - queryStarted);
      }
    }
    i += 1;
  }
  const s = service.summary();
  const r = raw.summary();
  return {
    service: s,
    raw: r,
    p99Ratio: round(s.p99Ms / r.p99Ms, 2),
    users: new Set(targets.map((t) => t.userId)).size,
    rowsPerPage: { service: round(serviceRows / Math.max(1, s.count), 1), raw: round(rawRows / Math.max(1, r.count), 1) },
  };
}
