/**
 * Repairs a shard's chain: storage is behind what must be there (`requiredSeq`) — a job of the
 * chain was failed by BullMQ, or storage lost acknowledged batches (a node with a periodic commit
 * log killed). The retained jobs that continue the chain are applied first, in order, through
 * the row versions (planChainRecovery decides which). When none holds the next range the shard
 * halts: with `untilDone` it waits and looks again (a range re-sent by the engine arrives in the
 * wait list), else it reports and returns.
 */
import { goneWatermarkJob, planChainRecovery, watermarkJobToReapply, type SettleJobDecode } from '@settlement/domain';
import { backoffDelayMs } from './retry.js';
import type { RetainedJobs } from './retained-jobs.js';
import type { HaltedRange, ShardSettlerDeps, ShardState } from './shard-settler.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';

/** What a chain repair needs of its shard's settler. */
export interface ChainRepairContext {
  readonly deps: ShardSettlerDeps;
  readonly retained: RetainedJobs;
  /** Highest watermark the settler saw acknowledged. */
  readonly acknowledgedSeq: bigint;
  /**
   * Applies a retained job, as a job of the recovery (it only needs its own predecessor
   * stored); with `resume`, from its own start (the watermark's job, applied again).
   */
  settleRecovered(jobId: string, job: Extract<SettleJobDecode, { ok: true }>, options?: { resume: boolean }): Promise<unknown>;
  /** Whether the job that wrote `state`'s watermark was applied again since the last doubt. */
  watermarkJobChecked(state: ShardState): boolean;
  noteWatermarkJobChecked(jobId: string, generation: number): void;
  /** Reads the shard's watermark (the settler's way: an error starts the job again). */
  readState(jobId: string): Promise<ShardState>;
  /** Runs a Redis request, retried in place. */
  retryRedis<T>(op: string, fn: () => Promise<T>, fields?: Record<string, unknown>): Promise<T>;
  /** Publishes the range the shard waits for (undefined: none). */
  setHalted(range: HaltedRange | undefined): Promise<void>;
}

export async function repairChain(ctx: ChainRepairContext, jobId: string, requiredSeq: bigint, initial: ShardState, untilDone: boolean): Promise<ShardState> {
  const { logger, metrics, settings, shard } = ctx.deps;
  let state = initial;
  if (state.lastSeq < ctx.acknowledgedSeq) {
    metrics.storageRollbacks.inc({ shard });
    logger.error({ shard, jobId, watermark: state.lastSeq, acknowledged: ctx.acknowledgedSeq }, 'storage lost acknowledged batches: applying them again from the retained jobs');
  }
  for (let attempt = 0; state.lastSeq < requiredSeq; ) {
    const from = state.lastSeq;
    const retained = await ctx.retryRedis('scan_retained', () => ctx.retained.around(from, requiredSeq), { jobId });
    const decision = planChainRecovery({ watermark: from, requiredSeq, retained, jobsMax: settings.recoveryJobsMax });
    if (decision.kind === 'in-order') break;
    for (const id of decision.jobIds) {
      const loaded = await ctx.retryRedis('load_retained', () => ctx.retained.load(id), { jobId });
      if (loaded === undefined) break;
      logger.warn({ shard, jobId, recoveredJobId: id, watermark: from, requiredSeq }, 'applying an earlier job of the chain first');
      await ctx.settleRecovered(id, loaded.decoded);
      metrics.chainRecoveries.inc({ shard });
      // A failed job applied now leaves the failed set, so it does not alert again.
      if (await loaded.job.isFailed().catch(() => false)) await loaded.job.remove().catch((error: unknown) => logger.warn({ err: error, shard, recoveredJobId: id }, 'could not remove a recovered failed job'));
    }
    if (decision.kind === 'halt') {
      const range = { afterSeq: decision.afterSeq, throughSeq: decision.throughSeq };
      const message = 'chain broken: no job in Redis holds the messages of this shard after afterSeq through throughSeq; shard halted until they are re-sent (the engine replays them to the ingestor from its replay endpoint, see README "When a shard halts")';
      if (!(await haltStep(ctx, jobId, range, attempt++, untilDone, message))) return ctx.readState(jobId);
    }
    state = await ctx.readState(jobId);
  }
  await ctx.setHalted(undefined);
  return state;
}

/**
 * One step of a halt: publishes the range the shard waits for (status, metric, the hash the
 * ingestor re-drives from), logs it, and waits before the next look. False when the caller
 * must not wait (`untilDone` unset).
 */
async function haltStep(ctx: ChainRepairContext, jobId: string, range: HaltedRange, attempt: number, untilDone: boolean, message: string): Promise<boolean> {
  const { logger, metrics, settings, closing, shard } = ctx.deps;
  await ctx.setHalted(range);
  metrics.chainHalts.inc({ shard });
  const delayMs = backoffDelayMs(attempt, settings.retryInitialMs * 20, settings.retryMaxMs * 6);
  logger.fatal({ shard, jobId, afterSeq: range.afterSeq, throughSeq: range.throughSeq, delayMs }, message);
  if (!untilDone) return false;
  if (closing.isSet) throw new ShutdownRequestedError(shard);
  await closing.sleep(delayMs);
  if (closing.isSet) throw new ShutdownRequestedError(shard);
  return true;
}

/**
 * Applies again, from its own start and through the row versions, the job whose batch wrote
 * the stored watermark (settle-step.ts, "reapply-watermark-job"): storage may hold that
 * acknowledged batch only in part. When Redis no longer holds the job, goneWatermarkJob
 * decides: a batch written within the retention is re-sent by the engine (reapplyRedriven);
 * an older one was synced long ago. Returns the state after.
 */
export async function reapplyWatermarkJob(ctx: ChainRepairContext, stored: ShardState, watermarkJobId: string, jobId: string, untilDone: boolean): Promise<ShardState> {
  const { logger, metrics, shard, storage, settings } = ctx.deps;
  const generation = storage.generation;
  // The job whose batch holds the watermark once this is done: a re-sent copy writes its own id.
  let checkedJobId = watermarkJobId;
  const loaded = await ctx.retryRedis('load_retained', () => ctx.retained.load(watermarkJobId), { jobId });
  if (loaded !== undefined) {
    logger.info({ shard, jobId, watermarkJobId }, 'storage was in doubt: applying the job that wrote the watermark again through row versions (its batch may have survived in part)');
    await ctx.settleRecovered(watermarkJobId, loaded.decoded, { resume: true });
    metrics.watermarkJobReapplies.inc({ shard });
  } else {
    const gone = goneWatermarkJob({ shard, watermarkJobId, writtenAtMs: stored.writtenAtMs, nowMs: Date.now(), retainedMs: settings.completedJobsRetainedMs, engineCanResend: settings.engineCanResend });
    if (gone.kind === 'redrive') {
      // Not noted as checked until applied: the next job of the shard waits for it too.
      const applied = await reapplyRedriven(ctx, { ...gone, reapply: true }, watermarkJobId, jobId, untilDone);
      // Not yet there, or another writer moved the watermark on meanwhile: the caller decides
      // again from storage as it is now.
      if (applied === undefined || applied === WATERMARK_MOVED) return ctx.readState(jobId);
      checkedJobId = applied;
    } else if (gone.kind === 'no-replay') {
      logger.error({ shard, jobId, watermarkJobId, afterSeq: gone.afterSeq, throughSeq: gone.throughSeq }, 'the job that wrote the watermark is gone from Redis and there is no replay endpoint (zmq.replay_endpoint) to re-send it: if storage lost part of its batch, that part stays lost (README "Known limits"); the next reconciliation reports it');
    } else if (gone.kind === 'durable') {
      logger.info({ shard, jobId, watermarkJobId, ageMs: gone.ageMs }, 'the job that wrote the watermark aged out of Redis; its batch is older than the retention, long synced: nothing to apply again');
    } else {
      logger.warn({ shard, jobId, watermarkJobId }, 'the job that wrote the watermark is not a settlement job (a correction): its batch cannot be applied again (the batchlog replay and the reconciliation are what is left)');
    }
  }
  ctx.noteWatermarkJobChecked(checkedJobId, generation);
  return ctx.readState(jobId);
}

/**
 * The watermark's job is gone from Redis (it came back empty) while its batch may be held
 * only in part: the shard halts on that range with `reapply` set, the ingestor has the engine
 * re-send it (redrive.ts), and the re-sent jobs are applied from their own start through the
 * row versions. Returns the id of the last re-sent job applied (its batch now holds the
 * watermark); undefined when not yet there and `untilDone` is unset.
 */
/** reapplyRedriven's answer when the stored watermark moved past the range under another job. */
const WATERMARK_MOVED = Symbol('watermark moved');

async function reapplyRedriven(ctx: ChainRepairContext, range: Required<HaltedRange>, watermarkJobId: string, jobId: string, untilDone: boolean): Promise<string | typeof WATERMARK_MOVED | undefined> {
  const { logger, metrics, settings, shard } = ctx.deps;
  for (let attempt = 0; ; attempt++) {
    const retained = await ctx.retryRedis('scan_retained', () => ctx.retained.around(range.afterSeq, range.throughSeq), { jobId });
    const plan = planChainRecovery({ watermark: range.afterSeq, requiredSeq: range.throughSeq, retained, jobsMax: settings.recoveryJobsMax });
    const jobIds = plan.kind === 're-apply' ? plan.jobIds : [];
    const jobs = await Promise.all(jobIds.map((id) => ctx.retryRedis('load_retained', () => ctx.retained.load(id), { jobId })));
    if (jobs.length > 0 && jobs.every((job) => job !== undefined)) {
      for (const [i, job] of jobs.entries()) {
        logger.warn({ shard, jobId, watermarkJobId, redrivenJobId: jobIds[i] }, 'applying the re-sent batch of the watermark\'s job again, through row versions');
        await ctx.settleRecovered(jobIds[i]!, job!.decoded, { resume: true });
      }
      metrics.watermarkJobReapplies.inc({ shard });
      await ctx.setHalted(undefined);
      return jobIds.at(-1);
    }
    const message = 'the job that wrote the watermark is gone from Redis (it came back without its data) while its batch may be held only in part by storage: shard halted until the engine re-sends its range (afterSeq through throughSeq), to apply it again through row versions (see README "When a shard halts")';
    if (!(await haltStep(ctx, jobId, range, attempt, untilDone, message))) return undefined;
    // A stale writer (a job in hand when Redis came back empty) can write past the range while
    // this waits; the ingestor then takes the range for settled and never has it re-sent (CI's
    // chaos test, 5 Dec: funding waited for (429, 479] for four minutes under a watermark of
    // 525). Waiting on would never end: decide again from storage.
    const now = await ctx.readState(jobId);
    if (now.lastSeq > range.throughSeq && now.lastJobId !== watermarkJobId) {
      logger.warn({ shard, jobId, watermarkJobId, watermark: now.lastSeq, watermarkNowJobId: now.lastJobId, afterSeq: range.afterSeq, throughSeq: range.throughSeq }, 'the watermark moved past the range waiting to be re-sent, written by another job: deciding again from storage');
      await ctx.setHalted(undefined);
      return WATERMARK_MOVED;
    }
  }
}

/**
 * A verify job: storage must hold everything acknowledged — the whole batch that wrote the
 * watermark, what this process wrote and the newest completed jobs of the queue. What it lost
 * is applied again; it never halts the queue (a hole it cannot fill is reported, and the next
 * settlement job stops at it). Returns the state after.
 */
export async function verifyStorage(
  ctx: ChainRepairContext,
  jobId: string,
  view: { state: ShardState; trusted: boolean },
  newestCompletedJobs: number,
  /**
   * What the settler that asked for the check saw acknowledged. After Redis came back empty and a
   * node lost its tail, it can be the only record left of the lost batches (chaos run, 4 Dec,
   * seed 1504: btc_eth's holder knew nothing past 233, the other settler had seen 2,998
   * acknowledged, and the shard stayed at 233); the repair then halts on the range for the
   * engine to re-send.
   */
  requesterAcknowledgedSeq?: bigint,
): Promise<ShardState> {
  let state = view.state;
  const watermarkJobId = watermarkJobToReapply({ stored: state, trusted: view.trusted, watermarkJobChecked: ctx.watermarkJobChecked(state), jobId });
  if (watermarkJobId !== undefined) {
    state = await reapplyWatermarkJob(ctx, state, watermarkJobId, jobId, false);
    // Still waiting for the engine to re-send it: repairing the chain now would write over a
    // batch storage may hold only in part, and once the watermark is past it nothing applies it
    // again (chaos test in CI, 4 Dec: 10 trades lost). The next settlement job waits for it.
    if (!ctx.watermarkJobChecked(state)) {
      ctx.deps.logger.warn({ shard: ctx.deps.shard, jobId, watermarkJobId, watermark: state.lastSeq }, 'verify: the job that wrote the watermark waits to be re-sent; the chain is repaired after it is applied again, not over it');
      return state;
    }
  }
  const completed = await ctx.retryRedis('scan_completed', () => ctx.retained.highestCompletedSeq(newestCompletedJobs), { jobId });
  let required = ctx.acknowledgedSeq;
  for (const seq of [completed, requesterAcknowledgedSeq]) if (seq !== undefined && seq > required) required = seq;
  return required > state.lastSeq ? repairChain(ctx, jobId, required, state, false) : state;
}
