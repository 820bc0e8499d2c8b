/**
 * `settle migrate-history`: copies every row of the pre-bucket history tables (trades_by_user,
 * ledger_events_by_user) into the bucketed ones (user_trades, user_ledger, user_history_buckets),
 * page by page in token order, saving its position after each page (history_migration), then
 * marks the migration done: from then on readers read the bucketed tables and settlers stop
 * writing the old ones.
 *
 * Safe while settling: settlers write both layouts until it is done, and each copied row keeps
 * its own write time (USING TIMESTAMP writetime), so a copy never overwrites a newer write and
 * a copy of a row a settler also wrote is the same cells. Safe to re-run: the same rows at the
 * same timestamps.
 */
import pMap from 'p-map';
import type cassandra from 'cassandra-driver';
import { FUNDING_HISTORY_STREAM, historyBucket } from '@settlement/domain';
import { HistoryLayoutRepository } from './history-layout.js';
import { ringPercent, scanTable } from './table-scan.js';

type Phase = 'trades' | 'ledger';
const PHASES: readonly Phase[] = ['trades', 'ledger'];

interface Position {
  readonly phase: Phase;
  /** Driver page state after the last page copied; null: the phase's start. */
  readonly ps: string | null;
  /** token(user_id) of the last row copied, for progress. */
  readonly t: string | null;
}

export interface HistoryBackfillProgress {
  readonly phase: Phase;
  /** 0-100 over both tables (each half of the bar), by ring position. */
  readonly percent: number | undefined;
  readonly rowsCopied: bigint;
  readonly pages: number;
}

export interface HistoryBackfillOptions {
  /** Rows read (and copied) per page. */
  readonly pageRows: number;
  /** Stop (resumable) after this many pages. */
  readonly pagesMax?: number | undefined;
  /** Start over instead of resuming (refused once done). */
  readonly restart?: boolean | undefined;
  /** Stop (resumable) after the page under way. */
  readonly signal?: AbortSignal | undefined;
  /** Copy statements in flight. Default 32. */
  readonly concurrency?: number | undefined;
  readonly onProgress?: ((progress: HistoryBackfillProgress) => void) | undefined;
}

export interface HistoryBackfillResult {
  /** It was done before this run: nothing copied. */
  readonly alreadyDone: boolean;
  /** Done now (readers switch to the bucketed tables). */
  readonly complete: boolean;
  /** This run went on from a saved position. */
  readonly resumed: boolean;
  /** Rows copied, all runs since the start. */
  readonly rowsCopied: bigint;
  readonly rowsThisRun: number;
  readonly pages: number;
  readonly bucketSeqs: bigint;
}

const TRADE_COLUMNS = 'user_id, symbol, seq, side, trade_id, buyer_user_id, seller_user_id, base_asset, quote_asset, price, quantity, quote_amount, buyer_refund, seller_refund, buyer_fee, seller_fee, settled_at';
const TRADE_VALUES = TRADE_COLUMNS.split(', ').slice(4);
const LEDGER_VALUES = ['sequence_id', 'event_type', 'amount', 'currency', 'related_id', 'created_at'];

function parsePosition(text: string | undefined): Position {
  if (text === undefined) return { phase: 'trades', ps: null, t: null };
  const p = JSON.parse(text) as Partial<Position>;
  if (!PHASES.includes(p.phase as Phase)) throw new Error(`history_migration position ${JSON.stringify(text)} is not one this command wrote; run it with --restart`);
  return { phase: p.phase as Phase, ps: typeof p.ps === 'string' ? p.ps : null, t: typeof p.t === 'string' ? p.t : null };
}

function percentOf(position: Position): number | undefined {
  const ring = position.t === null ? 0 : ringPercent(BigInt(position.t)) ?? 0;
  return (position.phase === 'trades' ? 0 : 50) + ring / 2;
}

export class HistoryBackfill {
  private readonly layout: HistoryLayoutRepository;
  private readonly cql: Readonly<Record<'scanTrades' | 'scanLedger' | 'trade' | 'ledger' | 'index', string>>;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.layout = new HistoryLayoutRepository(client, keyspace);
    this.cql = {
      scanTrades: `SELECT token(user_id) AS t, ${TRADE_COLUMNS}, writetime(trade_id) AS wt FROM ${keyspace}.trades_by_user`,
      scanLedger: `SELECT token(user_id) AS t, user_id, seq, ${LEDGER_VALUES.join(', ')}, writetime(event_type) AS wt FROM ${keyspace}.ledger_events_by_user`,
      trade: `INSERT INTO ${keyspace}.user_trades (user_id, symbol, bucket, seq, side, ${TRADE_VALUES.join(', ')}) VALUES (?, ?, ?, ?, ?, ${TRADE_VALUES.map(() => '?').join(', ')}) USING TIMESTAMP ?`,
      ledger: `INSERT INTO ${keyspace}.user_ledger (user_id, bucket, seq, ${LEDGER_VALUES.join(', ')}) VALUES (?, ?, ?, ${LEDGER_VALUES.map(() => '?').join(', ')}) USING TIMESTAMP ?`,
      index: `INSERT INTO ${keyspace}.user_history_buckets (user_id, stream, bucket) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    };
  }

  async run(options: HistoryBackfillOptions): Promise<HistoryBackfillResult> {
    const bucketSeqs = await this.layout.bucketSeqs();
    if (bucketSeqs === undefined) throw new Error('the keyspace has no history layout yet: run `settle schema` first');
    let state = await this.layout.state();
    if (state?.done === true) {
      if (options.restart === true) throw new Error('the history migration is done: readers use the bucketed tables and settlers no longer write the old ones, so it cannot start over');
      return { alreadyDone: true, complete: true, resumed: false, rowsCopied: state.rowsCopied, rowsThisRun: 0, pages: 0, bucketSeqs };
    }
    if (options.restart === true) {
      await this.layout.reset();
      state = await this.layout.state();
    }
    const resumed = state?.position !== undefined;
    let position = parsePosition(state?.position);
    let rowsCopied = state?.rowsCopied ?? 0n;
    const startedAt = state?.startedAt ?? new Date();
    let rowsThisRun = 0;
    let pages = 0;
    const stopped = (): boolean => options.signal?.aborted === true || (options.pagesMax !== undefined && pages >= options.pagesMax);
    const result = (complete: boolean): HistoryBackfillResult => ({ alreadyDone: false, complete, resumed, rowsCopied, rowsThisRun, pages, bucketSeqs });

    for (let phaseIndex = PHASES.indexOf(position.phase); phaseIndex < PHASES.length; phaseIndex++) {
      const phase = PHASES[phaseIndex]!;
      if (position.phase !== phase) position = { phase, ps: null, t: null };
      if (stopped()) return result(false);
      const scan = scanTable(this.client, phase === 'trades' ? this.cql.scanTrades : this.cql.scanLedger, [], { fetchSize: options.pageRows, pageState: position.ps ?? undefined });
      for await (const page of scan) {
        await this.copy(phase, page.rows, bucketSeqs, options.concurrency ?? 32);
        rowsCopied += BigInt(page.rows.length);
        rowsThisRun += page.rows.length;
        pages += 1;
        position =
          page.pageState === undefined
            ? { phase: PHASES[phaseIndex + 1] ?? phase, ps: null, t: null }
            : { phase, ps: page.pageState, t: page.lastToken === undefined ? position.t : page.lastToken.toString() };
        if (page.pageState === undefined && phaseIndex + 1 >= PHASES.length) break;
        await this.layout.saveProgress(JSON.stringify(position), rowsCopied, startedAt);
        options.onProgress?.({ phase: position.phase, percent: percentOf(position), rowsCopied, pages });
        if (page.pageState !== undefined && stopped()) return result(false);
      }
    }
    await this.layout.markDone(JSON.stringify({ phase: 'ledger', ps: null, t: null }), rowsCopied);
    options.onProgress?.({ phase: 'ledger', percent: 100, rowsCopied, pages });
    return result(true);
  }

  private async copy(phase: Phase, rows: readonly cassandra.types.Row[], bucketSeqs: bigint, concurrency: number): Promise<void> {
    const statements: Array<[string, unknown[]]> = [];
    const index = new Map<string, [bigint, string, bigint, bigint]>();
    const now = BigInt(Date.now()) * 1000n;
    for (const row of rows) {
      const userId = row['user_id'] as bigint;
      const seq = row['seq'] as bigint;
      // The row's own write time: a copy never wins over a newer write of the same row.
      const wt = (row['wt'] as bigint | null) ?? now;
      const bucket = historyBucket(seq, bucketSeqs);
      const stream = phase === 'trades' ? (row['symbol'] as string) : FUNDING_HISTORY_STREAM;
      if (phase === 'trades') {
        statements.push([this.cql.trade, [userId, stream, bucket, seq, row['side'], ...TRADE_VALUES.map((c) => row[c] ?? null), wt]]);
      } else {
        statements.push([this.cql.ledger, [userId, bucket, seq, ...LEDGER_VALUES.map((c) => row[c] ?? null), wt]]);
      }
      const key = `${userId}/${stream}/${bucket}`;
      const prior = index.get(key);
      if (prior === undefined || prior[3] < wt) index.set(key, [userId, stream, bucket, wt]);
    }
    for (const entry of index.values()) statements.push([this.cql.index, entry]);
    await pMap(statements, ([query, params]) => this.client.execute(query, params, { prepare: true, isIdempotent: true }), { concurrency });
  }
}
