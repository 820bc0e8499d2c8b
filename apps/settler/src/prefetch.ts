/**
 * Reads for the job BullMQ will hand out next, started while the current job's batches are
 * written, so the next job does not wait for them: its duplicate-trade read, and its row reads
 * when the row cache is cold. Best effort: any failure only means the next job reads as usual.
 *
 * A prefetch is valid only when that job really comes next and nothing else wrote the shard
 * meanwhile (the settler uses it only while it trusts its remembered shard state): then the
 * stored trades are those the read saw plus the ones this process wrote since, and rows not in
 * the cache are as the read saw them.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  SETTLE_JOB_NAME,
  balanceRowKey,
  decodeSettleJobLenient,
  touchedRowKeys,
  type BalanceRow,
  type BalanceRowKey,
  type Market,
  type SettleChunk,
  type SettleJobDecode,
} from '@settlement/domain';
import type { BalanceRepository, TradeRepository } from '@settlement/scylla';

export const EMPTY_SEQS: ReadonlyMap<bigint, bigint> = new Map();
/** A trade id in job data as encodeSettlementJob writes it (JSON.stringify: no spaces). */
const TRADE_ID_IN_JSON = /"tradeId":"(\d{1,20})"/g;

export interface Prefetch {
  readonly jobId: string;
  /** The job decoded, when the prefetch needed it (cold cache). */
  readonly decoded: Extract<SettleJobDecode, { ok: true }> | undefined;
  /** Trade ids the early read asked for. */
  readonly queriedTradeIds: ReadonlySet<bigint>;
  /** Ids above this were not asked for (none can be stored but by writtenSince); undefined: all were asked. */
  readonly queriedUpTo: bigint | undefined;
  readonly settled: Promise<ReadonlyMap<bigint, bigint> | undefined>;
  /** Rows read ahead (undefined: none were needed), or 'failed'. */
  readonly rows: Promise<Map<BalanceRowKey, BalanceRow> | undefined | 'failed'>;
  /** trade_id → seq of the trades written by the job during which the reads ran. */
  readonly writtenSince: ReadonlyMap<bigint, bigint>;
  /** Balance rows written by that job. */
  readonly rowsWrittenSince: ReadonlySet<BalanceRowKey>;
}

/** What the settler's row cache and remembered state say, at the moment a prefetch starts. */
export interface PrefetchView {
  readonly cacheComplete: boolean;
  readonly cacheHas: (key: BalanceRowKey) => boolean;
  /** The remembered shard state; undefined when unknown. */
  readonly stored: { readonly exists: boolean; readonly maxTradeId: bigint | undefined } | undefined;
}

export interface PrefetcherDeps {
  readonly shard: string;
  readonly market: Market | undefined;
  readonly feeAccountUserId: bigint;
  readonly queue: Queue;
  readonly trades: TradeRepository;
  readonly balances: BalanceRepository;
  readonly logger: Logger;
}

export class NextJobPrefetcher {
  private prefetched: Prefetch | undefined;
  /** Bumped at each job start and each prefetch: only the latest prefetch may be stored. */
  private token = 0;
  /**
   * Whether the last job had trade ids that needed the duplicate-check read. With a complete
   * cache that read is all a prefetch could save, and an engine numbering trades upwards never
   * needs it: the prefetch (two Redis reads and the job's JSON) is then skipped.
   */
  tradeReadNeeded = true;
  /**
   * Whether the last job read balance rows its cache did not hold. While the cache holds every
   * row the jobs touch (the steady state once the active users are cached) a prefetch has no
   * row to read ahead either, and is skipped like above; the first job that misses a row turns
   * it back on for the jobs after it.
   */
  rowReadNeeded = true;

  constructor(private readonly deps: PrefetcherDeps) {}

  /** At a job's start: its prefetch, if one was made for it; any other is dropped. */
  take(jobId: string): Prefetch | undefined {
    this.token += 1;
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    return prefetched?.jobId === jobId ? prefetched : undefined;
  }

  /** Drops any prefetch (the shard state it assumed is no longer trusted). */
  drop(): void {
    this.token += 1;
    this.prefetched = undefined;
  }

  /**
   * The prefetch's results for `job`, when its reads cover every trade id of the job: the stored
   * trades (those the early read saw plus those written since) and the rows read ahead (minus
   * the rows written since, which the cache holds). Undefined when it does not cover the job.
   */
  static async use(prefetched: Prefetch, job: Extract<SettleJobDecode, { ok: true }>): Promise<{ settled: Map<bigint, bigint>; rows: Map<BalanceRowKey, BalanceRow> | undefined } | undefined> {
    const [seqs, rows] = await Promise.all([prefetched.settled, prefetched.rows]);
    const upTo = prefetched.queriedUpTo;
    const covered = job.messages.every((m) => m.kind !== 'trade' || prefetched.queriedTradeIds.has(m.tradeId) || (upTo !== undefined && m.tradeId > upTo));
    if (seqs === undefined || rows === 'failed' || !covered) return undefined;
    const settled = new Map(seqs);
    for (const [tradeId, seq] of prefetched.writtenSince) settled.set(tradeId, seq);
    // A row the previous job wrote may have been read before that write: the cache holds it
    // (or, if evicted, it is read again), never the early read.
    if (rows !== undefined) for (const key of prefetched.rowsWrittenSince) rows.delete(key);
    return { settled, rows };
  }

  /** Looks at the job BullMQ hands out next (the right end of the wait list) and starts its reads. */
  start(jobId: string, chunks: readonly SettleChunk[], view: PrefetchView): void {
    const token = ++this.token;
    if ((view.cacheComplete || !this.rowReadNeeded) && !this.tradeReadNeeded) return;
    const writtenSince = new Map<bigint, bigint>();
    const rowsWrittenSince = new Set<BalanceRowKey>();
    for (const chunk of chunks) {
      for (const trade of chunk.trades) writtenSince.set(trade.tradeId, trade.seq);
      for (const row of chunk.rows) rowsWrittenSince.add(balanceRowKey(row.userId, row.assetId));
    }
    const run = async (): Promise<void> => {
      const { queue, trades, feeAccountUserId, market, shard } = this.deps;
      const redis = (await queue.client) as unknown as Redis;
      const nextId = await redis.lindex(queue.toKey('wait'), -1);
      if (nextId === null || nextId === jobId || token !== this.token) return;
      const [name, data] = await redis.hmget(queue.toKey(nextId), 'name', 'data');
      if (name !== SETTLE_JOB_NAME || typeof data !== 'string' || token !== this.token) return;
      let tradeIds: bigint[] = [];
      let decoded: Prefetch['decoded'];
      let rows: Prefetch['rows'] = Promise.resolve(undefined);
      if (view.cacheComplete) {
        // Only the trade ids are needed, and BullMQ parses the job again when it hands it
        // out: a scan of the JSON is much cheaper than a second parse. If the scan misses an
        // id, the job sees it and reads as usual (see use()).
        if (market !== undefined) for (const match of data.matchAll(TRADE_ID_IN_JSON)) tradeIds.push(BigInt(match[1]!));
      } else {
        const full = decodeSettleJobLenient(JSON.parse(data) as unknown, shard);
        if (!full.ok) return;
        decoded = full;
        if (market !== undefined) tradeIds = full.messages.flatMap((m) => (m.kind === 'trade' ? [m.tradeId] : []));
        const missing: { userId: bigint; assetId: number }[] = [];
        for (const [key, k] of touchedRowKeys(full.messages, feeAccountUserId)) if (!view.cacheHas(key)) missing.push(k);
        if (missing.length > 0) rows = this.deps.balances.loadShardRows(shard, missing).catch(() => 'failed' as const);
      }
      // Only ids at or below the highest settled one can be duplicates; the current job's
      // trades are accounted for by writtenSince.
      const known = view.stored;
      const queriedUpTo = known === undefined || (known.exists && known.maxTradeId === undefined) ? undefined : known.exists ? known.maxTradeId : -1n;
      if (queriedUpTo !== undefined) tradeIds = tradeIds.filter((id) => id <= queriedUpTo);
      this.tradeReadNeeded = tradeIds.length > 0;
      const settled: Prefetch['settled'] =
        tradeIds.length === 0 || market === undefined ? Promise.resolve(EMPTY_SEQS) : trades.findSettledSeqs(market.name, tradeIds).catch(() => undefined);
      if (token !== this.token) return;
      this.prefetched = { jobId: nextId, decoded, queriedTradeIds: new Set(tradeIds), queriedUpTo, settled, rows, writtenSince, rowsWrittenSince };
    };
    void run().catch((error: unknown) => this.deps.logger.debug({ err: error, shard: this.deps.shard, jobId }, 'prefetch failed'));
  }
}
