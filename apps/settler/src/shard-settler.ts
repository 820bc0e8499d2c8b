/**
 * The single writer of one shard. For each job: know the shard's stored state (remembered, or
 * read again whenever storage or ownership may have changed), check it against the chain of
 * jobs known to be acknowledged and apply what storage lost, drop messages already settled,
 * plan the batches (libs/domain settle-plan), and write each as one LOGGED BATCH with its
 * watermark, stamped with a fenced timestamp (libs/domain fencing).
 *
 * The exactly-once argument, rule by rule, is in docs/ARCHITECTURE.md.
 */
import type { Job } from 'bullmq';
import {
  CORRECT_JOB_NAME,
  DeadLetterCode,
  DomainError,
  SETTLE_JOB_NAME,
  VERIFY_JOB_NAME,
  balanceRowKey,
  decodeCorrectionJob,
  decodeVerifyJob,
  decideSettleStep,
  decodeSettleJobLenient,
  planSettlement,
  shardEpochKey,
  shrinkBatchBytes,
  touchedRowKeys,
  watermarkJobToReapply,
  type BalanceRow,
  type BalanceRowKey,
  type CorrectionJob,
  type SettleJobDecode,
  type SettlePlan,
} from '@settlement/domain';
import { BalanceCache } from './balance-cache.js';
import { CacheWarmer } from './cache-warmer.js';
import { chunkBatch } from './chunk-batch.js';
import { reapplyWatermarkJob, repairChain, verifyStorage, type ChainRepairContext } from './chain-repair.js';
import { applyCorrection } from './correction.js';
import { HaltedRangePublisher } from './halted-range.js';
import { deadLetterWholeJob, jobDataJson, type WholeJobDeadLettered } from './job-dead-letter.js';
import { JobLockCheck } from './job-lock-check.js';
import { EMPTY_SEQS, NextJobPrefetcher, type Prefetch } from './prefetch.js';
import { RetainedJobs } from './retained-jobs.js';
import { classifyError, isBatchTooLarge, isTransient, retryInPlace } from './retry.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';
import { ShardFence } from './shard-fence.js';
import { ShardKnowledge } from './shard-knowledge.js';
import type { HaltedRange, JobOutcome, ShardSettlerDeps, ShardState } from './shard-types.js';

export type { HaltedRange, JobOutcome, ShardSettlerDeps, ShardSettlerSettings, ShardState } from './shard-types.js';
import { ShardMovedError } from './shard-moved-error.js';
import { StorageError } from './storage-error.js';

/** Newest completed jobs a verify job looks at for the highest acknowledged sequence. */
const VERIFY_COMPLETED_JOBS = 50;

type DecodedJob = Extract<SettleJobDecode, { ok: true }>;
const keyOfRow = (row: BalanceRow): BalanceRowKey => balanceRowKey(row.userId, row.assetId);

export class ShardSettler {
  readonly shard: string;
  readonly cache: BalanceCache;
  /** What this settler knows of the stored shard state (see shard-knowledge.ts). */
  private readonly knowledge: ShardKnowledge;
  /** This process's fencing epoch for the shard, taken at a take-over. */
  private readonly fence: ShardFence;
  /** Byte bound the planner uses; halved when Cassandra rejects a batch as too large. */
  private batchBytesMax: number;
  private readonly halt: HaltedRangePublisher;
  /** The job in hand's BullMQ lock, checked before a further chunk. */
  private readonly lockCheck: JobLockCheck;
  private readonly prefetcher: NextJobPrefetcher;
  /** Completes the row cache in the background after it was reset (see cache-warmer.ts). */
  private readonly warmer: CacheWarmer;
  private readonly retained: RetainedJobs;
  /** Jobs of the shard this process is handling now (0 or 1: a worker takes one at a time). */
  private jobsInHand = 0;
  /** The lease was taken (again) while a job was in hand: the take-over waits for it (takeOver()). */
  private takeOverPending = false;

  constructor(private readonly deps: ShardSettlerDeps) {
    this.shard = deps.shard;
    this.cache = new BalanceCache(deps.settings.cacheRowsMax);
    this.batchBytesMax = deps.settings.batchBytesMax;
    this.knowledge = new ShardKnowledge({ ...deps, consistency: deps.writer.consistency });
    this.prefetcher = new NextJobPrefetcher(deps);
    this.warmer = new CacheWarmer({ ...deps, rowsReadMax: deps.settings.cacheWarmRowsMax });
    this.fence = new ShardFence(deps.shard, this.knowledge.token, deps.fences, deps.logger, { redis: () => this.knowledge.redis(), key: shardEpochKey(deps.redisPrefix, deps.shard) });
    this.retained = new RetainedJobs(deps.queue, deps.shard, deps.settings.recoveryJobsMax);
    this.halt = new HaltedRangePublisher(deps.shard, { ...deps, redis: () => this.knowledge.redis() });
    this.lockCheck = new JobLockCheck({ shard: deps.shard, jobKey: (id) => deps.queue.toKey(id), redis: () => this.knowledge.redis(), retryRedis: (op, fn, fields) => this.retryRedis(op, fn, fields) });
  }

  get lastSeq(): bigint | undefined {
    return this.knowledge.lastSeq;
  }

  /** Highest watermark this process saw acknowledged (0 before its first batch). */
  get acknowledged(): bigint {
    return this.knowledge.acknowledgedSeq;
  }

  /**
   * Whether the stored watermark is below the newest completed jobs of the queue: storage lost
   * acknowledged batches. A read-only check (no claim, no write), made outside any job: a verify
   * job, in the shard's one active slot, then repairs it.
   */
  async storageBehindCompleted(): Promise<boolean> {
    const [completed, stored] = await Promise.all([
      this.newestCompletedSeq(),
      this.deps.watermarks.get(this.shard, { consistency: this.deps.writer.consistency }),
    ]);
    return completed !== undefined && (stored?.lastSeq ?? 0n) < completed;
  }

  /** The highest sequence among the newest completed jobs of the queue (undefined: none retained). */
  newestCompletedSeq(): Promise<bigint | undefined> {
    return this.retained.highestCompletedSeq(VERIFY_COMPLETED_JOBS);
  }

  /** The range the shard waits for, while a chain recovery found no retained job for it. */
  get halted(): HaltedRange | undefined {
    return this.halt.current;
  }

  /** Handles one job of the shard's queue. Never throws for bad data; throws ShutdownRequestedError when stopping mid-job. */
  async process(job: Job, lockToken?: string): Promise<JobOutcome | WholeJobDeadLettered> {
    this.jobsInHand += 1;
    // A take-over that came while the previous job was in hand applies before this one.
    if (this.takeOverPending) this.applyTakeOver();
    try {
      return await this.processJob(job, lockToken);
    } finally {
      this.jobsInHand -= 1;
      if (this.jobsInHand === 0 && this.takeOverPending) this.applyTakeOver();
    }
  }

  private async processJob(job: Job, lockToken: string | undefined): Promise<JobOutcome | WholeJobDeadLettered> {
    const jobId = job.id ?? 'unknown';
    this.lockCheck.take(jobId, lockToken);
    this.deps.metrics.jobs.inc({ shard: this.shard, name: job.name });
    const prefetched = this.prefetcher.take(jobId);
    if (job.name === SETTLE_JOB_NAME) {
      // Job data never changes once added, so a decode done while prefetching still holds.
      const decoded = prefetched?.decoded ?? decodeSettleJobLenient(job.data, this.shard);
      if (!decoded.ok) return this.deadLetterJob(job, decoded.reason, decoded.field);
      return this.settle(jobId, decoded, { prefetched });
    }
    if (job.name === VERIFY_JOB_NAME) {
      let acknowledgedSeq: bigint | undefined;
      try {
        acknowledgedSeq = decodeVerifyJob(job.data).acknowledgedSeq;
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        return this.deadLetterJob(job, error.message, error.field);
      }
      return this.verify(jobId, acknowledgedSeq);
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
      return applyCorrection(this.correctionContext(), jobId, correction);
    }
    return this.deadLetterJob(job, `Invalid job: name: is ${JSON.stringify(job.name)}, expected ${SETTLE_JOB_NAME}, ${VERIFY_JOB_NAME} or ${CORRECT_JOB_NAME}`, 'name');
  }

  /** Forgets cached rows and the remembered shard state: the next job reads storage again. */
  invalidateCache(): void {
    this.cache.invalidate();
    this.knowledge.forget();
    this.prefetcher.drop();
  }

  /**
   * This process (re)takes the shard: nothing remembered is trusted, and a new fencing epoch is
   * taken before its first write. Never under a job in hand, whose plan reads the cache across
   * awaits (chaos run, 4 Dec, seed 606: the lease came back while a job read the rows it did not
   * cache; the cache emptied under it, and it settled the users it had cached as if they had no
   * balance). The job in hand goes on as the stale writer it is (its old epoch loses to any newer
   * owner's); the take-over applies before the next job.
   */
  takeOver(): void {
    if (this.jobsInHand > 0) {
      this.takeOverPending = true;
      return;
    }
    this.applyTakeOver();
  }

  private applyTakeOver(): void {
    this.takeOverPending = false;
    this.invalidateCache();
    this.fence.drop();
    // Whatever this process recorded as halted before may have been repaired by another since.
    this.halt.forget();
  }

  /** The shard's stored state: the remembered one while it is trusted (ShardKnowledge), else read, with the shard claimed. */
  private async view(jobId: string): Promise<{ state: ShardState; trusted: boolean }> {
    const remembered = await this.knowledge.trusted(this.fence.held);
    if (remembered !== undefined) return { state: remembered, trusted: true };
    return { state: await this.claimAndRead(jobId), trusted: false };
  }

  private async claimAndRead(jobId: string): Promise<ShardState> {
    const claiming = this.retryRedis('claim', () => this.knowledge.claim(), { jobId });
    // Awaited below unless the read fails first; its rejection (stopping) must not go unhandled
    // then (chaos run, 4 Dec, seed 1502: a settler stopped with exit code 1 on an unhandled
    // ShutdownRequestedError of a claim still retrying when its read failed).
    claiming.catch(() => undefined);
    const state = await this.cassandra('read', () => this.knowledge.read(), { jobId });
    // Someone else claimed the shard or took an epoch since ours: it may have written above our
    // epoch, so take a new one too, and doubt the batch that wrote the watermark.
    const claimed = await claiming;
    const held = this.fence.held;
    if (claimed.previous !== this.knowledge.token || (held !== undefined && claimed.epoch !== held.toString())) {
      this.fence.drop();
      this.knowledge.forgetWatermarkJobCheck();
    }
    return state;
  }

  private retryRedis<T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown> = {}): Promise<T> {
    const { settings, logger, metrics, closing } = this.deps;
    return retryInPlace(fn, {
      shard: this.shard,
      initialMs: settings.retryInitialMs,
      maxMs: settings.retryMaxMs,
      closing,
      onRetry: (error, attempt, kind) => {
        metrics.retries.inc({ shard: this.shard, op, kind });
        logger.warn({ err: error, shard: this.shard, op, kind, attempt, ...fields }, 'retrying in place');
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

  private async settle(jobId: string, job: DecodedJob, options: { prefetched?: Prefetch | undefined; recovering?: boolean; resume?: boolean | undefined } = {}): Promise<JobOutcome> {
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
      decideSettleStep({
        stored: state,
        trusted,
        jobId,
        prevLastSeq: job.prevLastSeq,
        messages: job.messages,
        rejected: job.rejected,
        acknowledgedSeq: this.knowledge.acknowledgedSeq,
        recovering: options.recovering === true,
        watermarkJobChecked: this.knowledge.watermarkJobChecked(state),
        resume: options.resume,
      });
    let step = decide();
    // At most: the watermark's job applied again, then the chain repaired, then the job applies.
    for (let round = 0; step.kind !== 'apply'; round += 1) {
      if (round === 2) throw new Error(`shard ${shard}: job ${jobId} still cannot apply after the watermark's job and the chain were repaired (${step.kind}, watermark ${state.lastSeq})`);
      state = step.kind === 'reapply-watermark-job'
        ? await reapplyWatermarkJob(this.chainRepairContext(), state, step.watermarkJobId, jobId, true)
        : await repairChain(this.chainRepairContext(), jobId, step.requiredSeq, state, true);
      trusted = false;
      // The jobs applied first may have settled some of this job's trade ids.
      settledSeqs = await this.cassandra('read', () => this.readTrades(job, state), { jobId });
      step = decide();
    }
    const { floor, resumed, pending, rejected, skipped } = step;
    if (resumed) logger.warn({ shard, jobId, watermark: state.lastSeq, from: job.prevLastSeq }, 'job wrote the watermark before its writer stopped: applying it again through row versions');
    if (resumed || !this.cache.isCurrent(job.prevLastSeq, state)) {
      if (this.cache.lastSeq !== undefined) metrics.cacheReloads.inc({ shard });
      this.cache.reset(state);
      this.warmer.warm(this.cache);
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
      // Checked now: the writer's mode only ever goes from dual to single, never back.
      dualHistory: this.deps.writer.historyMode.dualWrite,
    });
    await this.ensureEpoch(state, jobId);

    if (options.recovering !== true) {
      this.prefetcher.start(jobId, plan.chunks, { cacheComplete: this.cache.complete, cacheHas: (key) => this.cache.has(key), stored: this.knowledge.remembered });
    }
    // The users of every acknowledged chunk, recorded once for the job, even when it stops
    // part-way (one SADD per chunk was 5 % of a settler's CPU at the closed-loop maximum).
    const changedUsers = new Set<bigint>();
    try {
      state = await this.writeChunks(jobId, plan.chunks, state, changedUsers);
    } finally {
      this.recordChanged(changedUsers, jobId);
    }
    metrics.cacheRows.set({ shard }, this.cache.size);
    metrics.messages.inc({ shard, outcome: 'applied' }, plan.applied);
    if (plan.alreadySettled > 0) metrics.messages.inc({ shard, outcome: 'already_settled' }, plan.alreadySettled);
    if (plan.deadLettered > 0) metrics.messages.inc({ shard, outcome: 'dead_lettered' }, plan.deadLettered);
    return { applied: plan.applied, skipped, alreadySettled: plan.alreadySettled, deadLettered: plan.deadLettered, batches: plan.chunks.length, lastSeq: state.lastSeq.toString() };
  }

  /**
   * Writes the plan's chunks in order, each one LOGGED BATCH with its watermark under a fenced
   * timestamp, and returns the shard state after the last. Adds the users of each acknowledged
   * chunk to `changedUsers`.
   */
  private async writeChunks(jobId: string, chunks: SettlePlan['chunks'], initial: ShardState, changedUsers: Set<bigint>): Promise<ShardState> {
    const { logger, metrics } = this.deps;
    const shard = this.shard;
    let state = initial;
    let ownerChecked: Promise<void> | undefined;
    for (const [index, chunk] of chunks.entries()) {
      if (ownerChecked !== undefined) await ownerChecked;
      const batch = chunkBatch(shard, jobId, chunk, state, this.fence.issue(state.writeTs), new Date());
      const statements = this.deps.writer.buildStatements(batch.rows);
      const generation = this.deps.storage.generation;
      // The ownership check before the next chunk runs while this one is written, off the
      // critical path: it was never what keeps a stale writer out (its batches lose by their
      // older epoch, see fencing.ts), only what stops it early.
      ownerChecked = index + 1 < chunks.length && this.lockCheck.due ? this.lockCheck.check() : undefined;
      ownerChecked?.catch(() => undefined);
      const started = performance.now();
      await this.cassandra('write', () => this.deps.writer.execute(statements), { jobId, lastSeq: batch.after.lastSeq });
      metrics.writeLatency.observe({ shard }, (performance.now() - started) / 1000);
      metrics.batches.inc({ shard, kind: 'settle' });
      metrics.batchStatements.observe({ shard }, statements.length);

      state = batch.after;
      this.cache.commit(chunk.rows, keyOfRow, state);
      // A job applied again from its start writes the watermark it found until it passes it: its
      // chunks below that watermark do not make its batch whole yet (chaos run, 4 Dec: a re-sent
      // watermark job stopped after its first chunk, when its lock was found gone, was taken as
      // applied again, and the lost part of its batch stayed lost).
      this.knowledge.noteWritten(state, generation, jobId, chunk.lastSeq >= state.lastSeq);
      for (const row of chunk.rows) changedUsers.add(row.userId);
      for (const letter of chunk.deadLetters) {
        metrics.deadLetters.inc({ shard, code: letter.code });
        logger.warn({ shard, jobId, seq: letter.seq, code: letter.code, field: letter.field, reason: letter.reason }, 'message dead-lettered');
      }
    }
    return state;
  }

  /** Records the users of a job's acknowledged batches for the reconciliation of changed users; never holds the job up. */
  private recordChanged(userIds: ReadonlySet<bigint>, jobId: string): void {
    const changedUsers = this.deps.changedUsers;
    if (changedUsers === undefined || userIds.size === 0) return;
    void changedUsers.record(userIds).catch((error: unknown) => this.deps.logger.warn({ err: error, shard: this.shard, jobId }, 'could not record the changed users (the full sweep covers them)'));
  }

  /**
   * Holds a fencing epoch that may write over `state` before the first write of a job. A new
   * epoch is above the one of any settler that wrote since `state` was read — our batches would
   * win over its — so the plan must include what it wrote: the shard is read again, and if it
   * moved, the job is planned again (ShardMovedError).
   */
  private async ensureEpoch(state: ShardState, jobId: string): Promise<void> {
    if (!(await this.fence.ensure(state.writeTs, (take) => this.cassandra('fence', take, { jobId }), jobId))) return;
    const now = await this.cassandra('read', () => this.knowledge.read(), { jobId });
    if (now.lastSeq !== state.lastSeq || now.writeTs !== state.writeTs) {
      this.invalidateCache();
      throw new ShardMovedError(this.shard, jobId);
    }
  }

  /** Reads the rows the messages touch that the cache does not hold (none when the cache is complete). */
  private async loadMissingRows(messages: Parameters<typeof touchedRowKeys>[0], jobId: string): Promise<Map<BalanceRowKey, BalanceRow> | undefined> {
    if (this.cache.complete) return undefined;
    const missing: { userId: bigint; assetId: number }[] = [];
    for (const [key, k] of touchedRowKeys(messages, this.deps.feeAccountUserId)) if (!this.cache.has(key)) missing.push(k);
    this.prefetcher.rowReadNeeded = missing.length > 0;
    if (missing.length === 0) return undefined;
    const started = performance.now();
    const loaded = await this.cassandra('load_rows', () => this.deps.balances.loadShardRows(this.shard, missing), { jobId, rows: missing.length });
    this.deps.metrics.rowLoadLatency.observe({ shard: this.shard }, (performance.now() - started) / 1000);
    this.cache.putLoaded(loaded);
    return loaded;
  }

  /** A verify job (see chain-repair.ts, verifyStorage), with what its requester saw acknowledged. */
  private async verify(jobId: string, requesterAcknowledgedSeq: bigint | undefined): Promise<JobOutcome> {
    // Never what this settler remembers: a verify job is asked for when storage may not hold it.
    const state = await this.claimAndRead(jobId);
    const after = await verifyStorage(this.chainRepairContext(), jobId, { state, trusted: false }, VERIFY_COMPLETED_JOBS, requesterAcknowledgedSeq);
    return { applied: 0, skipped: 0, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: after.lastSeq.toString() };
  }

  /** What a chain repair needs of this settler (see chain-repair.ts). */
  private chainRepairContext(): ChainRepairContext {
    return {
      deps: this.deps,
      retained: this.retained,
      acknowledgedSeq: this.knowledge.acknowledgedSeq,
      settleRecovered: (id, decoded, options) => this.settle(id, decoded, { recovering: true, resume: options?.resume }),
      watermarkJobChecked: (state) => this.knowledge.watermarkJobChecked(state),
      noteWatermarkJobChecked: (id, generation) => this.knowledge.noteWatermarkJobChecked(id, generation),
      readState: (jobId) => this.cassandra('read', () => this.knowledge.read(), { jobId }),
      retryRedis: (op, fn, fields) => this.retryRedis(op, fn, fields),
      setHalted: (range) => this.halt.set(range),
    };
  }

  /**
   * The shard's state as read now (claimed), once the job that wrote its watermark is applied
   * again if it was not since the last doubt (settle-step.ts): a correction writes the watermark
   * under its own id, and a half-kept batch it wrote over would never be applied again.
   */
  private async settledView(jobId: string): Promise<ShardState> {
    const state = await this.claimAndRead(jobId);
    const pending = watermarkJobToReapply({ stored: state, trusted: false, watermarkJobChecked: this.knowledge.watermarkJobChecked(state), jobId });
    return pending === undefined ? state : reapplyWatermarkJob(this.chainRepairContext(), state, pending, jobId, true);
  }

  /** What a correction needs of this settler (see correction.ts). */
  private correctionContext(): Parameters<typeof applyCorrection>[0] {
    return {
      deps: this.deps,
      cache: this.cache,
      readState: (jobId) => this.settledView(jobId),
      cassandra: (op, fn, fields) => this.cassandra(op, fn, fields),
      stampBatch: async (state, jobId) => {
        await this.ensureEpoch(state, jobId);
        return this.fence.issue(state.writeTs);
      },
      noteWritten: (state, generation, jobId) => this.knowledge.noteWritten(state, generation, jobId),
      deadLetter: (jobId, reason, field, raw) => this.deadLetterRaw(jobId, reason, field, raw, DeadLetterCode.AMOUNT_OVERFLOW),
    };
  }

  /** A job that cannot be read at all: kept whole, as its raw JSON, with the reason. */
  private deadLetterJob(job: Job, reason: string, field: string | undefined): Promise<WholeJobDeadLettered> {
    return this.deadLetterRaw(job.id ?? 'unknown', reason, field, jobDataJson(job.data), DeadLetterCode.INVALID_JOB);
  }

  private deadLetterRaw(jobId: string, reason: string, field: string | undefined, raw: string, code: string): Promise<WholeJobDeadLettered> {
    return deadLetterWholeJob(this.deps, (op, fn, fields) => this.cassandra(op, fn, fields), { jobId, reason, field, raw, code });
  }
}

export function isExpectedFailure(error: unknown): boolean {
  return error instanceof StorageError ? isTransient(error.cause) : false;
}
