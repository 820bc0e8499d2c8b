/**
 * The single writer of one shard. For each job: read the shard watermark (and the job's trade
 * ids, one IN read), check the chain, drop messages already settled, plan the batches, write
 * each as one LOGGED BATCH with its watermark, retrying in place until acknowledged.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import {
  CORRECT_JOB_NAME,
  DeadLetterCode,
  DomainError,
  SETTLE_JOB_NAME,
  balanceRowKey,
  correctionRowsNotVisible,
  decodeCorrectionJob,
  decodeSettleJobLenient,
  planCorrection,
  planSettlement,
  touchedRowKeys,
  type BalanceRow,
  type BalanceRowKey,
  type CorrectedRow,
  type CorrectionJob,
  type Market,
  type PlannedDeadLetter,
  type SettleChunk,
  type SettleJobDecode,
} from '@settlement/domain';
import type { BalanceRepository, CorrectionRecord, DeadLetterRepository, SettlementWriter, TradeRepository, WatermarkRepository } from '@settlement/scylla';
import { BalanceCache, type CacheState } from './balance-cache.js';
import type { Closing } from './closing.js';
import type { SettlerMetrics } from './metrics.js';
import { backoffDelayMs, isTransient, retryInPlace } from './retry.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';

/** Failed/delayed jobs looked at when the chain shows an earlier job missing. */
export const CHAIN_SCAN_JOBS_MAX = 1000;

export interface ShardSettlerSettings {
  readonly batchStatementsMax: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly cacheRowsMax: number;
}

export interface ShardSettlerDeps {
  readonly shard: string;
  /** The shard's market; undefined for the funding shard. */
  readonly market: Market | undefined;
  readonly assetIds: ReadonlySet<number>;
  readonly feeAccountUserId: bigint;
  readonly settings: ShardSettlerSettings;
  readonly client: cassandra.Client;
  readonly writer: SettlementWriter;
  readonly watermarks: WatermarkRepository;
  readonly trades: TradeRepository;
  readonly balances: BalanceRepository;
  readonly deadLetters: DeadLetterRepository;
  /** The shard's queue: where failed jobs are looked for when the chain breaks. */
  readonly queue: Queue;
  /** BullMQ prefix (a hash tag); the shard's last-writer claim is kept under it. */
  readonly redisPrefix: string;
  readonly logger: Logger;
  readonly metrics: SettlerMetrics;
  readonly closing: Closing;
}

export interface JobOutcome {
  readonly applied: number;
  /** At or below the watermark when the job ran: settled before. */
  readonly skipped: number;
  readonly alreadySettled: number;
  readonly deadLettered: number;
  readonly batches: number;
  /** Watermark after the job. */
  readonly lastSeq: string;
}

interface ShardState extends CacheState {
  readonly batchCount: bigint;
  /**
   * Highest trade_id settled in the shard, from the watermark row: every settled trade has an
   * id at or below it, so only incoming ids at or below it can be duplicates. Undefined when
   * unknown (a watermark written before it was kept): then every id is checked.
   */
  readonly maxTradeId: bigint | undefined;
  /** The job whose batch wrote the watermark, as read from it (undefined after our own writes). */
  readonly lastJobId?: string | undefined;
}

/**
 * What was read for the next job of the queue while the current one was being written. Valid
 * only when that job really comes next and the stored watermark then equals what this process
 * wrote last (nobody else wrote): then the stored trades are those the read saw plus the ones
 * this process wrote since, and rows not in the cache are as the read saw them.
 */
interface Prefetch {
  readonly jobId: string;
  /** The job decoded, when the prefetch needed it (cold cache). */
  readonly decoded: Extract<SettleJobDecode, { ok: true }> | undefined;
  /** Trade ids the early read asked for. */
  readonly queriedTradeIds: ReadonlySet<bigint>;
  /**
   * Ids above this were not asked for: a settled trade with such an id can only have been
   * written since the read started, and is then in writtenSince. Undefined: all were asked.
   */
  readonly queriedUpTo: bigint | undefined;
  readonly settled: Promise<ReadonlyMap<bigint, bigint> | undefined>;
  /** Rows read ahead (undefined: none were needed), or 'failed'. */
  readonly rows: Promise<Map<BalanceRowKey, BalanceRow> | undefined | 'failed'>;
  /** trade_id → seq of the trades written by the job during which the reads ran. */
  readonly writtenSince: ReadonlyMap<bigint, bigint>;
  /** Balance rows written by that job. */
  readonly rowsWrittenSince: ReadonlySet<BalanceRowKey>;
}

const EMPTY_SEQS: ReadonlyMap<bigint, bigint> = new Map();
/** A trade id in job data as encodeSettlementJob writes it (JSON.stringify: no spaces). */
const TRADE_ID_IN_JSON = /"tradeId":"(\d{1,20})"/g;
const keyOfRow = (row: BalanceRow): BalanceRowKey => balanceRowKey(row.userId, row.assetId);

/**
 * The trade ids that need the duplicate-check read: those at or below the highest id settled
 * so far. A shard with no watermark row has settled nothing; one whose watermark does not
 * know its highest id checks every id.
 */
function duplicateCandidates(tradeIds: readonly bigint[], state: Pick<ShardState, 'exists' | 'maxTradeId'>): bigint[] {
  if (!state.exists) return [];
  const max = state.maxTradeId;
  return max === undefined ? [...tradeIds] : tradeIds.filter((id) => id <= max);
}

function maxTradeIdOf(trades: readonly { tradeId: bigint }[], prior: bigint | undefined): bigint | undefined {
  let max = prior;
  for (const t of trades) if (max === undefined || t.tradeId > max) max = t.tradeId;
  return max;
}

function nowUs(): bigint {
  return BigInt(Date.now()) * 1000n;
}

export class ShardSettler {
  readonly shard: string;
  private readonly cache: BalanceCache;
  /** Watermark as this process last read or wrote it (status and metrics only). */
  private known: ShardState | undefined;
  /**
   * The stored shard state as of this process's last read or acknowledged write. It stands for
   * the stored state as long as this process is the shard's last writer (see lastWriterIsUs).
   */
  private stored: ShardState | undefined;
  private readonly writerKey: string;
  private readonly writerToken: string;
  /** Reads for the job expected next, started while the current job's batch is written. */
  private prefetched: Prefetch | undefined;
  /** Bumped at each job start and each prefetch: only the latest prefetch may be stored. */
  private prefetchToken = 0;
  /**
   * Whether the last job had trade ids that needed the duplicate-check read. With a complete
   * cache that read is all a prefetch could save, and an engine numbering trades upwards never
   * needs it: the prefetch (two Redis reads and the job's JSON) is then skipped.
   */
  private tradeReadNeeded = true;

  constructor(private readonly deps: ShardSettlerDeps) {
    this.shard = deps.shard;
    this.cache = new BalanceCache(deps.settings.cacheRowsMax);
    this.writerKey = `${deps.redisPrefix}:settle:writer:${deps.shard}`;
    this.writerToken = `${hostname()}:${process.pid}:${randomUUID()}`;
  }

  get lastSeq(): bigint | undefined {
    return this.known?.lastSeq;
  }

  /** Handles one job of the shard's queue. Never throws for bad data; throws ShutdownRequestedError when stopping mid-job. */
  async process(job: Job): Promise<JobOutcome | { deadLettered: 'job'; reason: string }> {
    const jobId = job.id ?? 'unknown';
    this.deps.metrics.jobs.inc({ shard: this.shard, name: job.name });
    this.prefetchToken += 1;
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    if (job.name === SETTLE_JOB_NAME) {
      // Job data never changes once added, so a decode done while prefetching still holds.
      const decoded = (prefetched?.jobId === jobId ? prefetched.decoded : undefined) ?? decodeSettleJobLenient(job.data, this.shard);
      if (!decoded.ok) return this.deadLetterJob(job, decoded.reason, decoded.field);
      return this.settle(jobId, decoded, prefetched?.jobId === jobId ? prefetched : undefined);
    }
    if (job.name === CORRECT_JOB_NAME) {
      let correction: CorrectionJob;
      try {
        correction = decodeCorrectionJob(job.data);
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        return this.deadLetterJob(job, error.message, error.field);
      }
      if (correction.shard !== this.shard) {
        return this.deadLetterJob(job, `Invalid correction job: shard: is ${correction.shard}, queue shard is ${this.shard}`, 'shard');
      }
      return this.correct(jobId, correction);
    }
    return this.deadLetterJob(job, `Invalid job: name: is ${JSON.stringify(job.name)}, expected ${SETTLE_JOB_NAME} or ${CORRECT_JOB_NAME}`, 'name');
  }

  /** Forgets cached rows and state, e.g. after an unexpected error left the job half done. */
  invalidateCache(): void {
    this.cache.invalidate();
    this.stored = undefined;
  }

  /**
   * Whether no other settler has claimed this shard since this process last read or wrote it:
   * then `stored` is the stored state and the per-job watermark read can be skipped. Every
   * settler claims the shard (writerKey) before its first write after finding it claimed by
   * someone else, and a job runs only while BullMQ gives it the shard's one active slot, so a
   * claim by anyone else in between shows here. Any doubt (no state, Redis error) means no.
   */
  private async lastWriterIsUs(): Promise<boolean> {
    if (this.stored === undefined) return false;
    try {
      const redis = (await this.deps.queue.client) as unknown as Redis;
      return (await redis.get(this.writerKey)) === this.writerToken;
    } catch {
      return false;
    }
  }

  private async claim(jobId: string): Promise<void> {
    await this.retry('claim', async () => {
      const redis = (await this.deps.queue.client) as unknown as Redis;
      await redis.set(this.writerKey, this.writerToken);
    }, { jobId });
  }

  private retry<T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown> = {}): Promise<T> {
    const { settings, logger, metrics, closing } = this.deps;
    return retryInPlace(fn, {
      shard: this.shard,
      initialMs: settings.retryInitialMs,
      maxMs: settings.retryMaxMs,
      closing,
      onRetry: (error, attempt, delayMs, kind) => {
        metrics.retries.inc({ shard: this.shard, op, kind });
        const level = isTransient(error) ? 'warn' : 'error';
        logger[level]({ err: error, shard: this.shard, op, kind, attempt, delayMs, ...fields }, 'retrying in place');
      },
    });
  }

  private async readState(): Promise<ShardState> {
    const wm = await this.deps.watermarks.get(this.shard);
    const state: ShardState = wm === undefined
      ? { lastSeq: 0n, writeTs: 0n, batchCount: 0n, exists: false, maxTradeId: undefined }
      : { lastSeq: wm.lastSeq, writeTs: wm.writeTs, batchCount: wm.batchCount, exists: true, maxTradeId: wm.maxTradeId, lastJobId: wm.lastJobId };
    this.noteState(state);
    return state;
  }

  private noteState(state: ShardState): void {
    this.stored = state;
    if (this.known === undefined || state.lastSeq >= this.known.lastSeq) this.known = state;
    this.deps.metrics.lastSeq.set({ shard: this.shard }, Number(state.lastSeq));
  }

  private readTrades(job: Extract<SettleJobDecode, { ok: true }>, state: ShardState): Promise<ReadonlyMap<bigint, bigint>> {
    const market = this.deps.market;
    const tradeIds: bigint[] = [];
    if (market !== undefined) for (const m of job.messages) if (m.kind === 'trade') tradeIds.push(m.tradeId);
    const candidates = duplicateCandidates(tradeIds, state);
    this.tradeReadNeeded = candidates.length > 0;
    return candidates.length === 0 ? Promise.resolve(EMPTY_SEQS) : this.deps.trades.findSettledSeqs(market!.name, candidates);
  }

  private async readStateAndTrades(job: Extract<SettleJobDecode, { ok: true }>): Promise<[ShardState, ReadonlyMap<bigint, bigint>]> {
    // The watermark first: its highest trade id decides which ids need reading at all.
    const state = await this.readState();
    return [state, await this.readTrades(job, state)];
  }

  private async settle(jobId: string, job: Extract<SettleJobDecode, { ok: true }>, prefetched?: Prefetch): Promise<JobOutcome> {
    const { logger, metrics, settings } = this.deps;
    const shard = this.shard;
    const readStarted = performance.now();
    // The clock is read once, before the shard state: a settler can take this job over only
    // after our lock expired, i.e. after this moment, so every batch it writes is stamped later
    // than any batch of ours, even one we write late after a pause (a stale writer loses).
    const clockUs = nowUs();
    let ahead: { loaded: Map<BalanceRowKey, BalanceRow> | undefined } | undefined;
    let state: ShardState;
    let settledSeqs: ReadonlyMap<bigint, bigint>;
    const claimed = await this.lastWriterIsUs();
    if (claimed) {
      state = this.stored!;
      if (prefetched !== undefined) {
        const [seqs, rows] = await Promise.all([prefetched.settled, prefetched.rows]);
        const upTo = prefetched.queriedUpTo;
        const covered = job.messages.every((m) => m.kind !== 'trade' || prefetched.queriedTradeIds.has(m.tradeId) || (upTo !== undefined && m.tradeId > upTo));
        if (seqs !== undefined && rows !== 'failed' && covered) {
          // Stored trades = those the early read saw + those this process wrote since.
          const union = new Map(seqs);
          for (const [tradeId, seq] of prefetched.writtenSince) union.set(tradeId, seq);
          // A row the previous job wrote may have been read before that write: the cache holds
          // it (or, if evicted, it is read again), never the early read.
          if (rows !== undefined) for (const key of prefetched.rowsWrittenSince) rows.delete(key);
          ahead = { loaded: rows };
          metrics.prefetchHits.inc({ shard });
          settledSeqs = union;
        }
      }
      settledSeqs ??= await this.retry('read', () => this.readTrades(job, state), { jobId });
    } else {
      const claiming = this.claim(jobId);
      [state, settledSeqs] = await this.retry('read', () => this.readStateAndTrades(job), { jobId });
      await claiming;
    }
    metrics.readLatency.observe({ shard }, (performance.now() - readStarted) / 1000);

    if (job.prevLastSeq > state.lastSeq) {
      await this.recoverChain(jobId, job.prevLastSeq, state);
      // The jobs applied first may have settled some of this job's trade ids.
      [state, settledSeqs] = await this.retry('read', () => this.readStateAndTrades(job), { jobId });
    }

    // This very job wrote the watermark, and we did not see that write acknowledged: its writer
    // died or lost the job mid-write. A LOGGED BATCH is atomic but not isolated: after a
    // Cassandra crash part of it (the watermark, say) can be visible while the rest waits for
    // the batchlog replay, which then lands at the batch's old timestamp and loses to anything
    // newer. So the job is applied again from its own start, through the row versions (a no-op
    // where an effect is visible), and the next batches build on complete rows.
    const resumed = !claimed && state.lastJobId === jobId && job.prevLastSeq < state.lastSeq;
    const floor = resumed ? job.prevLastSeq : state.lastSeq;
    if (resumed) logger.warn({ shard, jobId, watermark: state.lastSeq, from: job.prevLastSeq }, 'job wrote the watermark before its writer stopped: applying it again through row versions');

    if (resumed || !this.cache.isCurrent(job.prevLastSeq, state)) {
      if (this.cache.lastSeq !== undefined) metrics.cacheReloads.inc({ shard });
      this.cache.reset(state);
    }

    const pending = floor === 0n ? job.messages : job.messages.filter((m) => m.seq > floor);
    const rejected = job.rejected.filter((r) => r.seq === undefined || r.seq > floor);
    const skipped = job.messages.length - pending.length + (job.rejected.length - rejected.length);
    if (skipped > 0) {
      metrics.messages.inc({ shard, outcome: 'skipped' }, skipped);
      logger.info({ shard, jobId, skipped, watermark: state.lastSeq }, 'messages at or below the watermark skipped');
    }
    if (pending.length === 0 && rejected.length === 0) {
      return { applied: 0, skipped, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: state.lastSeq.toString() };
    }

    // Rows read ahead go into the cache first; whatever is still missing is read now.
    if (ahead?.loaded !== undefined) this.cache.putLoaded(ahead.loaded);
    const loaded = await this.loadMissingRows(pending, jobId);
    const plan = planSettlement({
      shard,
      market: this.deps.market,
      assetIds: this.deps.assetIds,
      feeAccountUserId: this.deps.feeAccountUserId,
      afterSeq: floor,
      messages: pending,
      rejected,
      settledTradeSeqs: settledSeqs,
      current: (key) => this.cache.get(key) ?? loaded?.get(key),
      batchStatementsMax: settings.batchStatementsMax,
    });

    this.startPrefetch(jobId, plan.chunks);
    for (const chunk of plan.chunks) {
      // Fixed once per batch and reused by every retry, so a retry writes identical cells;
      // strictly above the previous batch, so a stale writer's late batch loses.
      const writeTs = state.writeTs + 1n > clockUs ? state.writeTs + 1n : clockUs;
      const batchCount = state.batchCount + 1n;
      // A resumed job's first chunks may end below the watermark its earlier attempt wrote;
      // the watermark never moves back.
      const lastSeq = chunk.lastSeq > state.lastSeq ? chunk.lastSeq : state.lastSeq;
      const statements = this.deps.writer.buildStatements({
        shard,
        writeTimestampUs: writeTs,
        trades: chunk.trades,
        fundingEvents: chunk.funding,
        balanceRows: chunk.rows,
        deadLetters: chunk.deadLetters.map((d) => ({ seq: d.seq, reason: d.reason, field: d.field, jobId, raw: d.raw })),
        watermark: { lastSeq, maxTradeId: chunk.trades.length > 0 ? maxTradeIdOf(chunk.trades, state.maxTradeId) : undefined, batchCount, jobId, updatedAt: new Date() },
      });
      const started = performance.now();
      await this.retry('write', () => this.deps.writer.execute(statements), { jobId, lastSeq });
      metrics.writeLatency.observe({ shard }, (performance.now() - started) / 1000);
      metrics.batches.inc({ shard, kind: 'settle' });
      metrics.batchStatements.observe({ shard }, statements.length);

      state = { lastSeq, writeTs, batchCount, exists: true, maxTradeId: chunk.trades.length > 0 ? maxTradeIdOf(chunk.trades, state.maxTradeId) : state.maxTradeId };
      this.cache.commit(chunk.rows, keyOfRow, state);
      this.noteState(state);
      this.recordDeadLetters(jobId, chunk.deadLetters);
    }
    metrics.cacheRows.set({ shard }, this.cache.size);
    metrics.messages.inc({ shard, outcome: 'applied' }, plan.applied);
    if (plan.alreadySettled > 0) metrics.messages.inc({ shard, outcome: 'already_settled' }, plan.alreadySettled);
    if (plan.deadLettered > 0) metrics.messages.inc({ shard, outcome: 'dead_lettered' }, plan.deadLettered);
    return {
      applied: plan.applied,
      skipped,
      alreadySettled: plan.alreadySettled,
      deadLettered: plan.deadLettered,
      batches: plan.chunks.length,
      lastSeq: state.lastSeq.toString(),
    };
  }

  /**
   * While the current job's batches are written, looks at the job BullMQ will hand out next
   * (the right end of the wait list) and starts its duplicate-trade read, and its row reads when
   * the cache is cold, so the next job does not wait for them. Best effort: any failure only
   * means the next job reads as usual.
   */
  private startPrefetch(jobId: string, chunks: readonly SettleChunk[]): void {
    const token = ++this.prefetchToken;
    if (this.cache.complete && !this.tradeReadNeeded) return;
    const writtenSince = new Map<bigint, bigint>();
    const rowsWrittenSince = new Set<BalanceRowKey>();
    for (const chunk of chunks) {
      for (const trade of chunk.trades) writtenSince.set(trade.tradeId, trade.seq);
      for (const row of chunk.rows) rowsWrittenSince.add(keyOfRow(row));
    }
    const run = async (): Promise<void> => {
      const { queue, trades, feeAccountUserId } = this.deps;
      const redis = (await queue.client) as unknown as Redis;
      const nextId = await redis.lindex(queue.toKey('wait'), -1);
      if (nextId === null || nextId === jobId || token !== this.prefetchToken) return;
      const [name, data] = await redis.hmget(queue.toKey(nextId), 'name', 'data');
      if (name !== SETTLE_JOB_NAME || typeof data !== 'string' || token !== this.prefetchToken) return;
      const market = this.deps.market;
      let tradeIds: bigint[] = [];
      let decoded: Prefetch['decoded'];
      let rows: Prefetch['rows'] = Promise.resolve(undefined);
      if (this.cache.complete) {
        // Only the trade ids are needed, and BullMQ parses the job again when it hands it
        // out: a scan of the JSON is much cheaper than a second parse. If the scan misses an
        // id, the job sees it and reads as usual (see settle).
        if (market !== undefined) for (const match of data.matchAll(TRADE_ID_IN_JSON)) tradeIds.push(BigInt(match[1]!));
      } else {
        const full = decodeSettleJobLenient(JSON.parse(data) as unknown, this.shard);
        if (!full.ok) return;
        decoded = full;
        if (market !== undefined) tradeIds = full.messages.flatMap((m) => (m.kind === 'trade' ? [m.tradeId] : []));
        const missing: { userId: bigint; assetId: number }[] = [];
        for (const [key, k] of touchedRowKeys(full.messages, feeAccountUserId)) if (!this.cache.has(key)) missing.push(k);
        if (missing.length > 0) rows = this.deps.balances.loadShardRows(this.shard, missing).catch(() => 'failed' as const);
      }
      // Only ids at or below the highest settled one can be duplicates (see duplicateCandidates);
      // the current job's trades are accounted for by writtenSince.
      const known = this.stored;
      const queriedUpTo = known === undefined || (known.exists && known.maxTradeId === undefined) ? undefined : known.exists ? known.maxTradeId : -1n;
      if (queriedUpTo !== undefined) tradeIds = tradeIds.filter((id) => id <= queriedUpTo);
      this.tradeReadNeeded = tradeIds.length > 0;
      // A failed read only loses the head start: the next job then reads as usual.
      const settled: Prefetch['settled'] =
        tradeIds.length === 0 || market === undefined ? Promise.resolve(EMPTY_SEQS) : trades.findSettledSeqs(market.name, tradeIds).catch(() => undefined);
      if (token !== this.prefetchToken) return;
      this.prefetched = { jobId: nextId, decoded, queriedTradeIds: new Set(tradeIds), queriedUpTo, settled, rows, writtenSince, rowsWrittenSince };
    };
    void run().catch((error: unknown) => this.deps.logger.debug({ err: error, shard: this.shard, jobId }, 'prefetch failed'));
  }

  private recordDeadLetters(jobId: string, letters: readonly PlannedDeadLetter[]): void {
    for (const letter of letters) {
      this.deps.metrics.deadLetters.inc({ shard: this.shard, code: letter.code });
      this.deps.logger.warn({ shard: this.shard, jobId, seq: letter.seq, code: letter.code, field: letter.field, reason: letter.reason }, 'message dead-lettered');
    }
  }

  /** Reads the rows the messages touch that the cache does not hold (none when the cache is complete). */
  private async loadMissingRows(messages: Parameters<typeof touchedRowKeys>[0], jobId: string): Promise<Map<BalanceRowKey, BalanceRow> | undefined> {
    if (this.cache.complete) return undefined;
    const missing: { userId: bigint; assetId: number }[] = [];
    for (const [key, k] of touchedRowKeys(messages, this.deps.feeAccountUserId)) if (!this.cache.has(key)) missing.push(k);
    if (missing.length === 0) return undefined;
    const loaded = await this.retry('load_rows', () => this.deps.balances.loadShardRows(this.shard, missing), { jobId, rows: missing.length });
    this.cache.putLoaded(loaded);
    return loaded;
  }

  /**
   * An earlier job of the chain was not applied (the job says its predecessor ended at
   * `prevLastSeq`, the shard is behind that). BullMQ moves a job that stalled too often to
   * failed; such a job is applied first. Without one the shard halts here, retrying with
   * backoff and alerting, because skipping would lose its messages.
   */
  private async recoverChain(jobId: string, prevLastSeq: bigint, initial: ShardState): Promise<void> {
    const { logger, metrics, settings, closing } = this.deps;
    let state = initial;
    for (let attempt = 0; state.lastSeq < prevLastSeq; ) {
      const missing = await this.retry('scan_failed', () => this.findMissingJob(state.lastSeq), { jobId });
      if (missing !== undefined) {
        logger.warn({ shard: this.shard, jobId, recoveredJobId: missing.job.id, watermark: state.lastSeq, prevLastSeq }, 'applying an earlier job of the chain first');
        await this.settle(missing.job.id ?? 'unknown', missing.decoded);
        metrics.chainRecoveries.inc({ shard: this.shard });
        if (missing.state === 'failed') {
          // Applied now; kept out of the failed set so it does not alert again. A later
          // delivery of the same messages would be skipped by the watermark anyway.
          await missing.job.remove().catch((error: unknown) => logger.warn({ err: error, shard: this.shard, recoveredJobId: missing.job.id }, 'could not remove a recovered failed job'));
        }
      } else {
        metrics.chainHalts.inc({ shard: this.shard });
        const delayMs = backoffDelayMs(attempt++, settings.retryInitialMs * 20, settings.retryMaxMs * 6);
        logger.fatal(
          { shard: this.shard, jobId, watermark: state.lastSeq, prevLastSeq, delayMs },
          'chain broken: an earlier job of this shard was not applied and is not in the failed set; shard halted',
        );
        if (closing.isSet) throw new ShutdownRequestedError(this.shard);
        await closing.sleep(delayMs);
        if (closing.isSet) throw new ShutdownRequestedError(this.shard);
      }
      state = await this.retry('read', () => this.readState(), { jobId });
    }
  }

  private async findMissingJob(afterSeq: bigint): Promise<{ job: Job; state: string; decoded: Extract<SettleJobDecode, { ok: true }> } | undefined> {
    let best: { job: Job; state: string; decoded: Extract<SettleJobDecode, { ok: true }> } | undefined;
    for (const state of ['failed', 'delayed'] as const) {
      const jobs = await this.deps.queue.getJobs([state], 0, CHAIN_SCAN_JOBS_MAX - 1, true);
      for (const job of jobs) {
        if (job.name !== SETTLE_JOB_NAME) continue;
        const decoded = decodeSettleJobLenient(job.data, this.shard);
        if (!decoded.ok || decoded.prevLastSeq > afterSeq) continue;
        const lastSeq = decoded.messages.reduce((max, m) => (m.seq > max ? m.seq : max), 0n);
        if (lastSeq <= afterSeq) continue;
        // The job that follows the watermark directly; else the one reaching furthest back.
        if (best === undefined || decoded.prevLastSeq > best.decoded.prevLastSeq) best = { job, state, decoded };
      }
    }
    return best;
  }

  /**
   * A reconciler correction: applied once (recorded in balance_corrections in the same batch).
   * Its deltas are expected − actual as the reconciler read the stored rows, so they apply to
   * the rows read from Cassandra now, never to the cache: a row changed behind the settler
   * differs from its cached copy, and the difference is what is being corrected.
   */
  private async correct(jobId: string, correction: CorrectionJob): Promise<JobOutcome | { deadLettered: 'job'; reason: string }> {
    const { logger } = this.deps;
    const shard = this.shard;
    // Read before the state, as in settle(): a late write of this correction loses to newer batches.
    const clockUs = nowUs();
    const claiming = this.claim(jobId);
    const [state, applied] = await this.retry(
      'read',
      () => Promise.all([this.readState(), this.deps.balances.getAppliedCorrection(correction.correctionId)]),
      { jobId },
    );
    await claiming;
    if (applied !== undefined) {
      // Its batch wrote the watermark and the job came back: the writer stopped before it saw
      // the batch acknowledged, and the batch may be only partly visible (see settle()).
      const resumed = state.lastJobId === jobId && applied.rows !== undefined;
      const rewrite = resumed ? await this.correctionRowsToRewrite(jobId, applied.rows!) : [];
      if (rewrite.length === 0) {
        logger.info({ shard, jobId, correctionId: correction.correctionId }, 'correction already applied');
        return { applied: 0, skipped: correction.rows.length, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: state.lastSeq.toString() };
      }
      logger.warn({ shard, jobId, correctionId: correction.correctionId, rows: rewrite.length }, 'correction partly visible: writing its rows again');
      await this.writeCorrection(jobId, clockUs, state, rewrite, undefined);
      return { applied: rewrite.length, skipped: correction.rows.length - rewrite.length, alreadySettled: 0, deadLettered: 0, batches: 1, lastSeq: state.lastSeq.toString() };
    }
    // Read after the claim: while this job holds the shard's one active slot no other settler
    // writes the shard, so the batch below replaces exactly the values read here.
    const stored = await this.retry('load_rows', () => this.deps.balances.loadShardRows(shard, correction.rows), { jobId, rows: correction.rows.length });
    let corrected;
    try {
      corrected = planCorrection(correction.rows, (key) => stored.get(key), state.lastSeq);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      return this.deadLetterRaw(jobId, undefined, `Cannot apply correction ${correction.correctionId}: ${error.message}`, error.field, JSON.stringify(correctionJson(correction)), DeadLetterCode.AMOUNT_OVERFLOW);
    }
    const rowsJson = JSON.stringify(
      corrected.map((c) => ({
        userId: c.after.userId.toString(),
        assetId: c.after.assetId,
        recreated: c.recreated,
        before: { available: c.before.available.toString(), locked: c.before.locked.toString(), version: c.before.version.toString() },
        after: { available: c.after.available.toString(), locked: c.after.locked.toString(), version: c.after.version.toString() },
      })),
    );
    await this.writeCorrection(jobId, clockUs, state, corrected.map((c) => c.after), { correctionId: correction.correctionId, reconciliationJobId: correction.reconciliationJobId, rowsJson });
    logger.info(
      { shard, jobId, correctionId: correction.correctionId, rows: corrected.length, recreated: corrected.filter((c) => c.recreated).length, watermark: state.lastSeq },
      'correction applied',
    );
    return { applied: corrected.length, skipped: 0, alreadySettled: 0, deadLettered: 0, batches: 1, lastSeq: state.lastSeq.toString() };
  }

  private async correctionRowsToRewrite(jobId: string, applied: readonly CorrectedRow[]): Promise<BalanceRow[]> {
    const keys = applied.map((c) => ({ userId: c.after.userId, assetId: c.after.assetId }));
    const stored = await this.retry('load_rows', () => this.deps.balances.loadShardRows(this.shard, keys), { jobId, rows: keys.length });
    return correctionRowsNotVisible(applied, (key) => stored.get(key));
  }

  /** One LOGGED BATCH: the corrected rows, the correction's record (first time only), the watermark. */
  private async writeCorrection(jobId: string, clockUs: bigint, state: ShardState, rows: BalanceRow[], record: CorrectionRecord | undefined): Promise<void> {
    const { metrics } = this.deps;
    const shard = this.shard;
    const writeTs = state.writeTs + 1n > clockUs ? state.writeTs + 1n : clockUs;
    const batchCount = state.batchCount + 1n;
    const statements = this.deps.writer.buildStatements({
      shard,
      writeTimestampUs: writeTs,
      trades: [],
      fundingEvents: [],
      balanceRows: rows,
      deadLetters: [],
      correction: record,
      // A correction is not a message: the watermark's sequence stays, its timestamp moves on.
      watermark: { lastSeq: state.lastSeq, batchCount, jobId, updatedAt: new Date() },
    });
    await this.retry('write', () => this.deps.writer.execute(statements), { jobId, correctionId: record?.correctionId });
    metrics.batches.inc({ shard, kind: 'correct' });
    const next = { lastSeq: state.lastSeq, writeTs, batchCount, exists: true, maxTradeId: state.maxTradeId };
    // The cache keeps only what it knew of the stored state just read; the corrected rows then
    // hold exactly what was written, so the next job builds on them.
    if (!this.cache.isCurrent(undefined, state)) this.cache.reset(state);
    this.cache.commit(rows, keyOfRow, next);
    this.noteState(next);
    metrics.cacheRows.set({ shard }, this.cache.size);
  }

  /** A job that cannot be read at all: kept whole, as its raw JSON, with the reason. */
  private async deadLetterJob(job: Job, reason: string, field: string | undefined): Promise<{ deadLettered: 'job'; reason: string }> {
    return this.deadLetterRaw(job.id ?? 'unknown', undefined, reason, field, safeJson(job.data), DeadLetterCode.INVALID_JOB);
  }

  private async deadLetterRaw(jobId: string, seq: bigint | undefined, reason: string, field: string | undefined, raw: string, code: string): Promise<{ deadLettered: 'job'; reason: string }> {
    // Built once, so a retry after an ambiguous timeout rewrites the same row.
    const statement = this.deps.deadLetters.insertStatement({ shard: this.shard, source: 'settler', reason, field, seq, jobId, raw });
    await this.retry('dead_letter', () => this.deps.client.execute(statement.query, statement.params, { prepare: true, isIdempotent: true, consistency: this.deps.writer.consistency }), { jobId });
    this.deps.metrics.deadLetters.inc({ shard: this.shard, code });
    this.deps.logger.error({ shard: this.shard, jobId, field, reason, code }, 'job dead-lettered whole');
    return { deadLettered: 'job', reason };
  }
}

function correctionJson(correction: CorrectionJob): unknown {
  return {
    ...correction,
    rows: correction.rows.map((r) => ({ ...r, userId: r.userId.toString(), availableDelta: r.availableDelta.toString(), lockedDelta: r.lockedDelta.toString() })),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
