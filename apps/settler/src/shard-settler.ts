/**
 * The single writer of one shard. For each job: know the shard's stored state (remembered, or
 * read again whenever storage or ownership may have changed), check it against the chain of
 * jobs known to be acknowledged and apply what storage lost, drop messages already settled,
 * plan the batches (libs/domain settle-plan), and write each as one LOGGED BATCH with its
 * watermark, stamped with a fenced timestamp (libs/domain fencing).
 *
 * The exactly-once argument, rule by rule, is in docs/ARCHITECTURE.md.
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
  VERIFY_JOB_NAME,
  balanceRowKey,
  decodeCorrectionJob,
  decideSettleStep,
  decodeSettleJobLenient,
  nextEpoch,
  nextWriteTimestamp,
  planChainRecovery,
  planSettlement,
  shrinkBatchBytes,
  touchedRowKeys,
  type BalanceRow,
  type BalanceRowKey,
  type CorrectionJob,
  type Market,
  type SettleJobDecode,
} from '@settlement/domain';
import type { BalanceRepository, DeadLetterRepository, FenceRepository, SettlementWriter, TradeRepository, WatermarkRepository } from '@settlement/scylla';
import { BalanceCache, type CacheState } from './balance-cache.js';
import type { Closing } from './closing.js';
import { applyCorrection } from './correction.js';
import type { SettlerMetrics } from './metrics.js';
import { EMPTY_SEQS, NextJobPrefetcher, type Prefetch } from './prefetch.js';
import { RetainedJobs } from './retained-jobs.js';
import { backoffDelayMs, classifyError, isBatchTooLarge, isTransient, retryInPlace } from './retry.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';
import { ShardMovedError } from './shard-moved-error.js';
import { StorageError } from './storage-error.js';
import type { StorageWatch } from './storage-watch.js';

/** Newest completed jobs a verify job looks at for the highest acknowledged sequence. */
const VERIFY_COMPLETED_JOBS = 50;

export interface ShardSettlerSettings {
  readonly batchStatementsMax: number;
  /** Estimated bytes per LOGGED BATCH (settler.batch_bytes_max). */
  readonly batchBytesMax: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly cacheRowsMax: number;
  /** Jobs one chain recovery applies at most, and job ids read from each Redis list to find them. */
  readonly recoveryJobsMax: number;
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
  readonly fences: FenceRepository;
  /** Bumped on every Cassandra error and node event of this process's client. */
  readonly storage: StorageWatch;
  /** The shard's queue: where retained jobs are looked for when the chain shows a hole. */
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

export interface ShardState extends CacheState {
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

/** A range of the shard's chain that no retained job holds: the shard waits for it. */
export interface HaltedRange {
  readonly afterSeq: bigint;
  readonly throughSeq: bigint;
}

type DecodedJob = Extract<SettleJobDecode, { ok: true }>;
const keyOfRow = (row: BalanceRow): BalanceRowKey => balanceRowKey(row.userId, row.assetId);
const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

function maxTradeIdOf(trades: readonly { tradeId: bigint }[], prior: bigint | undefined): bigint | undefined {
  let max = prior;
  for (const t of trades) if (max === undefined || t.tradeId > max) max = t.tradeId;
  return max;
}

export class ShardSettler {
  readonly shard: string;
  readonly cache: BalanceCache;
  /** Watermark as this process last read or wrote it (status and metrics only). */
  private known: ShardState | undefined;
  /** The stored shard state as of this process's last read or acknowledged write. */
  private stored: ShardState | undefined;
  /** StorageWatch generation when `stored` was read or written: older means read it again. */
  private storedGeneration = -1;
  /** Highest watermark this process saw acknowledged: storage must never be found below it. */
  private acknowledgedSeq = 0n;
  /** This process's fencing epoch for the shard; undefined until taken (at a take-over). */
  private epoch: bigint | undefined;
  private lastIssuedTs: bigint | undefined;
  /** Byte bound the planner uses; halved when Cassandra rejects a batch as too large. */
  private batchBytesMax: number;
  private haltedRange: HaltedRange | undefined;
  /** The job in hand and its BullMQ lock token, to check ownership before each further chunk. */
  private lock: { readonly jobId: string; readonly token: string } | undefined;
  private readonly prefetcher: NextJobPrefetcher;
  private readonly retained: RetainedJobs;
  private readonly writerKey: string;
  private readonly writerToken: string;

  constructor(private readonly deps: ShardSettlerDeps) {
    this.shard = deps.shard;
    this.cache = new BalanceCache(deps.settings.cacheRowsMax);
    this.batchBytesMax = deps.settings.batchBytesMax;
    this.writerKey = `${deps.redisPrefix}:settle:writer:${deps.shard}`;
    this.writerToken = `${hostname()}:${process.pid}:${randomUUID()}`;
    this.prefetcher = new NextJobPrefetcher(deps);
    this.retained = new RetainedJobs(deps.queue, deps.shard, deps.settings.recoveryJobsMax);
  }

  get lastSeq(): bigint | undefined {
    return this.known?.lastSeq;
  }

  /** Highest watermark this process saw acknowledged (0 before its first batch). */
  get acknowledged(): bigint {
    return this.acknowledgedSeq;
  }

  /** The range the shard waits for, while a chain recovery found no retained job for it. */
  get halted(): HaltedRange | undefined {
    return this.haltedRange;
  }

  /** Handles one job of the shard's queue. Never throws for bad data; throws ShutdownRequestedError when stopping mid-job. */
  async process(job: Job, lockToken?: string): Promise<JobOutcome | { deadLettered: 'job'; reason: string }> {
    const jobId = job.id ?? 'unknown';
    this.lock = lockToken === undefined ? undefined : { jobId, token: lockToken };
    this.deps.metrics.jobs.inc({ shard: this.shard, name: job.name });
    const prefetched = this.prefetcher.take(jobId);
    if (job.name === SETTLE_JOB_NAME) {
      // Job data never changes once added, so a decode done while prefetching still holds.
      const decoded = prefetched?.decoded ?? decodeSettleJobLenient(job.data, this.shard);
      if (!decoded.ok) return this.deadLetterJob(job, decoded.reason, decoded.field);
      return this.settle(jobId, decoded, { prefetched });
    }
    if (job.name === VERIFY_JOB_NAME) return this.verify(jobId);
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
      return applyCorrection(this.correctionContext(), jobId, correction);
    }
    return this.deadLetterJob(job, `Invalid job: name: is ${JSON.stringify(job.name)}, expected ${SETTLE_JOB_NAME}, ${VERIFY_JOB_NAME} or ${CORRECT_JOB_NAME}`, 'name');
  }

  /** Forgets cached rows and the remembered shard state: the next job reads storage again. */
  invalidateCache(): void {
    this.cache.invalidate();
    this.stored = undefined;
    this.prefetcher.drop();
  }

  /** This process (re)takes the shard: nothing remembered is trusted, and a new fencing epoch is taken before its first write. */
  takeOver(): void {
    this.invalidateCache();
    this.epoch = undefined;
  }

  /**
   * The shard's stored state. The remembered one stands for it only while nothing happened
   * that could have changed it behind this process: no Cassandra error or node event since it
   * was read or written (storage can lose acknowledged batches), and no other settler claimed
   * the shard since (every settler claims it before its first write after finding it claimed
   * by someone else, and a job runs only while BullMQ gives it the shard's one active slot).
   */
  private async view(jobId: string): Promise<{ state: ShardState; trusted: boolean }> {
    if (this.stored !== undefined && this.storedGeneration === this.deps.storage.generation && (await this.lastWriterIsUs())) {
      return { state: this.stored, trusted: true };
    }
    const claiming = this.claim(jobId);
    const state = await this.cassandra('read', () => this.readState(), { jobId });
    // Someone else wrote in between: they took an epoch above ours, so take a new one too.
    if ((await claiming) !== this.writerToken) this.epoch = undefined;
    return { state, trusted: false };
  }

  private async lastWriterIsUs(): Promise<boolean> {
    try {
      return (await (await this.redis()).get(this.writerKey)) === this.writerToken;
    } catch {
      return false;
    }
  }

  /** Claims the shard for this process; returns the previous holder (null when none, or Redis lost it). */
  private claim(jobId: string): Promise<string | null> {
    return this.retryRedis('claim', async () => (await this.redis()).set(this.writerKey, this.writerToken, 'GET'), { jobId });
  }

  private async redis(): Promise<Redis> {
    return (await this.deps.queue.client) as unknown as Redis;
  }

  private retryRedis<T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown> = {}): Promise<T> {
    const { settings, logger, metrics, closing } = this.deps;
    return retryInPlace(fn, {
      shard: this.shard,
      initialMs: settings.retryInitialMs,
      maxMs: settings.retryMaxMs,
      closing,
      onRetry: (error, attempt, delayMs, kind) => {
        metrics.retries.inc({ shard: this.shard, op, kind });
        logger.warn({ err: error, shard: this.shard, op, kind, attempt, delayMs, ...fields }, 'retrying in place');
      },
    });
  }

  /**
   * Runs one Cassandra request of the job. On failure nothing of the job is retried in place:
   * storage may have lost acknowledged batches meanwhile (a restart of a node with a periodic
   * commit log), so the cache and remembered state are dropped and the job starts again from
   * the watermark (settler.ts backs off between attempts).
   */
  private async cassandra<T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown> = {}): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      const kind = classifyError(error);
      this.deps.storage.bump();
      this.invalidateCache();
      if (op === 'write' && isBatchTooLarge(error)) {
        const before = this.batchBytesMax;
        this.batchBytesMax = shrinkBatchBytes(before);
        this.deps.logger.warn({ shard: this.shard, ...fields, before, after: this.batchBytesMax }, 'Cassandra rejected a batch as too large: planning the job again with smaller chunks');
      }
      if (this.deps.closing.isSet) throw new ShutdownRequestedError(this.shard);
      throw new StorageError(this.shard, op, kind, { cause: error });
    }
  }

  private async readState(): Promise<ShardState> {
    const generation = this.deps.storage.generation;
    const wm = await this.deps.watermarks.get(this.shard, { consistency: this.deps.writer.consistency });
    const state: ShardState = wm === undefined
      ? { lastSeq: 0n, writeTs: 0n, batchCount: 0n, exists: false, maxTradeId: undefined }
      : { lastSeq: wm.lastSeq, writeTs: wm.writeTs, batchCount: wm.batchCount, exists: true, maxTradeId: wm.maxTradeId, lastJobId: wm.lastJobId };
    this.noteState(state, generation);
    return state;
  }

  private noteState(state: ShardState, generation: number): void {
    this.stored = state;
    this.storedGeneration = generation;
    if (this.known === undefined || state.lastSeq >= this.known.lastSeq) this.known = state;
    this.deps.metrics.lastSeq.set({ shard: this.shard }, Number(state.lastSeq));
  }

  /** The trade ids of the job that need the duplicate-check read: those at or below the highest settled id. */
  private readTrades(job: DecodedJob, state: ShardState): Promise<ReadonlyMap<bigint, bigint>> {
    const market = this.deps.market;
    if (market === undefined || !state.exists) return Promise.resolve(EMPTY_SEQS);
    const max = state.maxTradeId;
    const candidates: bigint[] = [];
    for (const m of job.messages) if (m.kind === 'trade' && (max === undefined || m.tradeId <= max)) candidates.push(m.tradeId);
    this.prefetcher.tradeReadNeeded = candidates.length > 0;
    return candidates.length === 0 ? Promise.resolve(EMPTY_SEQS) : this.deps.trades.findSettledSeqs(market.name, candidates);
  }

  private async settle(jobId: string, job: DecodedJob, options: { prefetched?: Prefetch | undefined; recovering?: boolean } = {}): Promise<JobOutcome> {
    const { logger, metrics, settings } = this.deps;
    const shard = this.shard;
    const readStarted = performance.now();
    let { state, trusted } = await this.view(jobId);
    let ahead: Map<BalanceRowKey, BalanceRow> | undefined;
    let settledSeqs: ReadonlyMap<bigint, bigint> | undefined;
    if (trusted && options.prefetched !== undefined) {
      const used = await NextJobPrefetcher.use(options.prefetched, job);
      if (used !== undefined) {
        metrics.prefetchHits.inc({ shard });
        settledSeqs = used.settled;
        ahead = used.rows;
      }
    }
    settledSeqs ??= await this.cassandra('read', () => this.readTrades(job, state), { jobId });
    metrics.readLatency.observe({ shard }, (performance.now() - readStarted) / 1000);

    // The settle decision is pure (libs/domain settle-step.ts): repair the chain first, or
    // apply from a floor (the watermark, or the job's own start when it is resumed).
    const decide = () =>
      decideSettleStep({ stored: state, trusted, jobId, prevLastSeq: job.prevLastSeq, messages: job.messages, rejected: job.rejected, acknowledgedSeq: this.acknowledgedSeq, recovering: options.recovering === true });
    let step = decide();
    if (step.kind === 'recover') {
      state = await this.recoverChain(jobId, step.requiredSeq, state, true);
      trusted = false;
      // The jobs applied first may have settled some of this job's trade ids.
      settledSeqs = await this.cassandra('read', () => this.readTrades(job, state), { jobId });
      step = decide();
      if (step.kind === 'recover') throw new Error(`shard ${shard}: chain recovery ended at ${state.lastSeq}, below ${step.requiredSeq}`);
    }
    const { floor, resumed, pending, rejected, skipped } = step;
    if (resumed) logger.warn({ shard, jobId, watermark: state.lastSeq, from: job.prevLastSeq }, 'job wrote the watermark before its writer stopped: applying it again through row versions');
    if (resumed || !this.cache.isCurrent(job.prevLastSeq, state)) {
      if (this.cache.lastSeq !== undefined) metrics.cacheReloads.inc({ shard });
      this.cache.reset(state);
    }
    if (skipped > 0) {
      metrics.messages.inc({ shard, outcome: 'skipped' }, skipped);
      logger.info({ shard, jobId, skipped, watermark: state.lastSeq }, 'messages at or below the watermark skipped');
    }
    if (pending.length === 0 && rejected.length === 0) {
      return { applied: 0, skipped, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: state.lastSeq.toString() };
    }

    // Rows read ahead go into the cache first; whatever is still missing is read now.
    if (ahead !== undefined) this.cache.putLoaded(ahead);
    const loaded = await this.loadMissingRows(pending, jobId);
    const plan = planSettlement({
      shard,
      market: this.deps.market,
      assetIds: this.deps.assetIds,
      feeAccountUserId: this.deps.feeAccountUserId,
      afterSeq: floor,
      messages: [...pending],
      rejected: [...rejected],
      settledTradeSeqs: settledSeqs,
      current: (key) => this.cache.get(key) ?? loaded?.get(key),
      batchStatementsMax: settings.batchStatementsMax,
      batchBytesMax: this.batchBytesMax,
    });
    await this.ensureEpoch(state, jobId);

    if (options.recovering !== true) {
      this.prefetcher.start(jobId, plan.chunks, { cacheComplete: this.cache.complete, cacheHas: (key) => this.cache.has(key), stored: this.stored });
    }
    for (const [index, chunk] of plan.chunks.entries()) {
      if (index > 0) await this.checkStillOwner();
      const writeTs = this.issueTimestamp(state);
      const batchCount = state.batchCount + 1n;
      // A resumed job's first chunks may end below the watermark its earlier attempt wrote;
      // the watermark never moves back.
      const lastSeq = maxBig(chunk.lastSeq, state.lastSeq);
      const maxTradeId = chunk.trades.length > 0 ? maxTradeIdOf(chunk.trades, state.maxTradeId) : state.maxTradeId;
      const statements = this.deps.writer.buildStatements({
        shard,
        writeTimestampUs: writeTs,
        trades: chunk.trades,
        fundingEvents: chunk.funding,
        balanceRows: chunk.rows,
        deadLetters: chunk.deadLetters.map((d) => ({ seq: d.seq, reason: d.reason, field: d.field, jobId, raw: d.raw })),
        watermark: { lastSeq, maxTradeId: chunk.trades.length > 0 ? maxTradeId : undefined, batchCount, jobId, updatedAt: new Date() },
      });
      const generation = this.deps.storage.generation;
      const started = performance.now();
      await this.cassandra('write', () => this.deps.writer.execute(statements), { jobId, lastSeq });
      metrics.writeLatency.observe({ shard }, (performance.now() - started) / 1000);
      metrics.batches.inc({ shard, kind: 'settle' });
      metrics.batchStatements.observe({ shard }, statements.length);

      state = { lastSeq, writeTs, batchCount, exists: true, maxTradeId };
      this.cache.commit(chunk.rows, keyOfRow, state);
      this.noteWritten(state, generation);
      for (const letter of chunk.deadLetters) {
        metrics.deadLetters.inc({ shard, code: letter.code });
        logger.warn({ shard, jobId, seq: letter.seq, code: letter.code, field: letter.field, reason: letter.reason }, 'message dead-lettered');
      }
    }
    metrics.cacheRows.set({ shard }, this.cache.size);
    metrics.messages.inc({ shard, outcome: 'applied' }, plan.applied);
    if (plan.alreadySettled > 0) metrics.messages.inc({ shard, outcome: 'already_settled' }, plan.alreadySettled);
    if (plan.deadLettered > 0) metrics.messages.inc({ shard, outcome: 'dead_lettered' }, plan.deadLettered);
    return { applied: plan.applied, skipped, alreadySettled: plan.alreadySettled, deadLettered: plan.deadLettered, batches: plan.chunks.length, lastSeq: state.lastSeq.toString() };
  }

  /** After an acknowledged batch: what storage now holds, and must never be found below. */
  private noteWritten(state: ShardState, generation: number): void {
    this.noteState(state, generation);
    this.acknowledgedSeq = maxBig(this.acknowledgedSeq, state.lastSeq);
  }

  /**
   * Makes sure this process holds a fencing epoch that may still write over the stored state:
   * taken at each take-over (lightweight transaction on the fence row), again when another
   * owner's batch is found stored, or when the epoch's span is used up.
   */
  private async ensureEpoch(state: ShardState, jobId: string): Promise<void> {
    if (this.epoch !== undefined && nextWriteTimestamp({ epoch: this.epoch, storedWriteTs: state.writeTs, lastIssuedTs: this.lastIssuedTs }).ok) return;
    const held = this.epoch;
    this.epoch = await this.cassandra('fence', () => this.deps.fences.take(this.shard, this.writerToken, (current) => nextEpoch(current, state.writeTs, held)), { jobId });
    this.deps.logger.info({ shard: this.shard, jobId, epoch: this.epoch.toString(), previous: held?.toString() }, 'fencing epoch taken');
    // The plan was built on `state`, read before the epoch was taken. A settler that took an
    // epoch in between (and wrote) has a lower one than ours now: our batches would win over
    // its, so the plan must include what it wrote. Read again; if the shard moved, plan again.
    const now = await this.cassandra('read', () => this.readState(), { jobId });
    if (now.lastSeq !== state.lastSeq || now.writeTs !== state.writeTs) {
      this.invalidateCache();
      throw new ShardMovedError(this.shard, jobId);
    }
  }

  /** The next batch's timestamp: fixed before the write, so the batch is one set of cells. */
  private issueTimestamp(state: ShardState): bigint {
    const next = nextWriteTimestamp({ epoch: this.epoch!, storedWriteTs: state.writeTs, lastIssuedTs: this.lastIssuedTs });
    if (!next.ok) throw new Error(`shard ${this.shard}: cannot stamp a batch with epoch ${this.epoch}: ${next.reason}`);
    this.lastIssuedTs = next.writeTs;
    return next.writeTs;
  }

  /**
   * Before each further chunk: this process still holds the lock of the job in hand (a writer
   * paused past its lock stops here; one that writes anyway loses by its older epoch).
   */
  private async checkStillOwner(): Promise<void> {
    const lock = this.lock;
    if (lock === undefined) return;
    const holder = await this.retryRedis('lock_check', async () => (await this.redis()).get(`${this.deps.queue.toKey(lock.jobId)}:lock`), { jobId: lock.jobId });
    if (holder !== lock.token) throw new Error(`shard ${this.shard}: the lock of job ${lock.jobId} is held by another settler; stopping mid-job`);
  }

  /** Reads the rows the messages touch that the cache does not hold (none when the cache is complete). */
  private async loadMissingRows(messages: Parameters<typeof touchedRowKeys>[0], jobId: string): Promise<Map<BalanceRowKey, BalanceRow> | undefined> {
    if (this.cache.complete) return undefined;
    const missing: { userId: bigint; assetId: number }[] = [];
    for (const [key, k] of touchedRowKeys(messages, this.deps.feeAccountUserId)) if (!this.cache.has(key)) missing.push(k);
    if (missing.length === 0) return undefined;
    const loaded = await this.cassandra('load_rows', () => this.deps.balances.loadShardRows(this.shard, missing), { jobId, rows: missing.length });
    this.cache.putLoaded(loaded);
    return loaded;
  }

  /**
   * Storage is behind what must be there (`requiredSeq`): a job of the chain was failed by
   * BullMQ, or storage lost acknowledged batches. The retained jobs that continue the chain
   * are applied first, in order, through the row versions (planChainRecovery). When none
   * holds the next range the shard halts: with `untilDone` it waits and looks again (a
   * re-sent range arrives in the wait list), else it reports and returns.
   */
  private async recoverChain(jobId: string, requiredSeq: bigint, initial: ShardState, untilDone: boolean): Promise<ShardState> {
    const { logger, metrics, settings, closing } = this.deps;
    const shard = this.shard;
    let state = initial;
    if (state.lastSeq < this.acknowledgedSeq) {
      metrics.storageRollbacks.inc({ shard });
      logger.error({ shard, jobId, watermark: state.lastSeq, acknowledged: this.acknowledgedSeq }, 'storage lost acknowledged batches: applying them again from the retained jobs');
    }
    for (let attempt = 0; state.lastSeq < requiredSeq; ) {
      const from = state.lastSeq;
      const retained = await this.retryRedis('scan_retained', () => this.retained.around(from, requiredSeq), { jobId });
      const decision = planChainRecovery({ watermark: from, requiredSeq, retained, jobsMax: settings.recoveryJobsMax });
      if (decision.kind === 'in-order') break;
      for (const id of decision.jobIds) {
        const loaded = await this.retryRedis('load_retained', () => this.retained.load(id), { jobId });
        if (loaded === undefined) break;
        logger.warn({ shard, jobId, recoveredJobId: id, watermark: from, requiredSeq }, 'applying an earlier job of the chain first');
        await this.settle(id, loaded.decoded, { recovering: true });
        metrics.chainRecoveries.inc({ shard });
        // A failed job applied now leaves the failed set, so it does not alert again.
        if (await loaded.job.isFailed().catch(() => false)) await loaded.job.remove().catch((error: unknown) => logger.warn({ err: error, shard, recoveredJobId: id }, 'could not remove a recovered failed job'));
      }
      if (decision.kind === 'halt') {
        this.haltedRange = { afterSeq: decision.afterSeq, throughSeq: decision.throughSeq };
        metrics.chainHalted.set({ shard }, 1);
        metrics.chainHalts.inc({ shard });
        const delayMs = backoffDelayMs(attempt++, settings.retryInitialMs * 20, settings.retryMaxMs * 6);
        logger.fatal(
          { shard, jobId, afterSeq: decision.afterSeq, throughSeq: decision.throughSeq, delayMs },
          'chain broken: no job in Redis holds the messages of this shard after afterSeq through throughSeq; shard halted until they are re-sent (the engine replays them to the ingestor from its replay endpoint, see README "When a shard halts")',
        );
        if (!untilDone) return this.cassandra('read', () => this.readState(), { jobId });
        if (closing.isSet) throw new ShutdownRequestedError(shard);
        await closing.sleep(delayMs);
        if (closing.isSet) throw new ShutdownRequestedError(shard);
      }
      state = await this.cassandra('read', () => this.readState(), { jobId });
    }
    this.haltedRange = undefined;
    metrics.chainHalted.set({ shard }, 0);
    return state;
  }

  /**
   * A verify job: storage must hold everything acknowledged — what this process wrote and the
   * newest completed jobs of the queue. What it lost is applied again; it never halts the queue
   * (a hole it cannot fill is reported, and the next settlement job stops at it).
   */
  private async verify(jobId: string): Promise<JobOutcome> {
    const { state } = await this.view(jobId);
    const completed = await this.retryRedis('scan_completed', () => this.retained.highestCompletedSeq(VERIFY_COMPLETED_JOBS), { jobId });
    const required = maxBig(completed ?? 0n, this.acknowledgedSeq);
    const after = required > state.lastSeq ? await this.recoverChain(jobId, required, state, false) : state;
    return { applied: 0, skipped: 0, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: after.lastSeq.toString() };
  }

  /** What a correction needs of this settler (see correction.ts). */
  private correctionContext(): Parameters<typeof applyCorrection>[0] {
    return {
      deps: this.deps,
      cache: this.cache,
      readState: async (jobId) => {
        const claiming = this.claim(jobId);
        const state = await this.cassandra('read', () => this.readState(), { jobId });
        if ((await claiming) !== this.writerToken) this.epoch = undefined;
        return state;
      },
      cassandra: (op, fn, fields) => this.cassandra(op, fn, fields),
      stampBatch: async (state, jobId) => {
        await this.ensureEpoch(state, jobId);
        return this.issueTimestamp(state);
      },
      noteWritten: (state, generation) => this.noteWritten(state, generation),
      deadLetter: (jobId, reason, field, raw) => this.deadLetterRaw(jobId, reason, field, raw, DeadLetterCode.AMOUNT_OVERFLOW),
    };
  }

  /** A job that cannot be read at all: kept whole, as its raw JSON, with the reason. */
  private async deadLetterJob(job: Job, reason: string, field: string | undefined): Promise<{ deadLettered: 'job'; reason: string }> {
    return this.deadLetterRaw(job.id ?? 'unknown', reason, field, safeJson(job.data), DeadLetterCode.INVALID_JOB);
  }

  private async deadLetterRaw(jobId: string, reason: string, field: string | undefined, raw: string, code: string): Promise<{ deadLettered: 'job'; reason: string }> {
    // Built once, so a retry after an ambiguous timeout rewrites the same row.
    const statement = this.deps.deadLetters.insertStatement({ shard: this.shard, source: 'settler', reason, field, seq: undefined, jobId, raw });
    await this.cassandra('dead_letter', () => this.deps.client.execute(statement.query, statement.params, { prepare: true, isIdempotent: true, consistency: this.deps.writer.consistency }), { jobId });
    this.deps.metrics.deadLetters.inc({ shard: this.shard, code });
    this.deps.logger.error({ shard: this.shard, jobId, field, reason, code }, 'job dead-lettered whole');
    return { deadLettered: 'job', reason };
  }
}

export function isStorageError(error: unknown): error is StorageError {
  return error instanceof StorageError;
}

/** Whether an error is one the settler logs as expected (a transient Cassandra or Redis failure). */
export function isExpectedFailure(error: unknown): boolean {
  return error instanceof StorageError ? isTransient(error.cause) : false;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
