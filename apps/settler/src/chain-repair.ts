/**
 * Repairs a shard's chain: storage is behind what must be there (`requiredSeq`) — a job of the
 * chain was failed by BullMQ, or storage lost acknowledged batches (a node with a periodic commit
 * log killed). The retained jobs that continue the chain are applied first, in order, through
 * the row versions (planChainRecovery decides which). When none holds the next range the shard
 * halts: with `untilDone` it waits and looks again (a range re-sent by the engine arrives in the
 * wait list), else it reports and returns.
 */
import { planChainRecovery, type SettleJobDecode } from '@settlement/domain';
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
  /** Applies a retained job, as a job of the recovery (it only needs its own predecessor stored). */
  settleRecovered(jobId: string, job: Extract<SettleJobDecode, { ok: true }>): Promise<unknown>;
  /** Reads the shard's watermark (the settler's way: an error starts the job again). */
  readState(jobId: string): Promise<ShardState>;
  /** Runs a Redis request, retried in place. */
  retryRedis<T>(op: string, fn: () => Promise<T>, fields?: Record<string, unknown>): Promise<T>;
  /** Publishes the range the shard waits for (undefined: none). */
  setHalted(range: HaltedRange | undefined): Promise<void>;
}

export async function repairChain(ctx: ChainRepairContext, jobId: string, requiredSeq: bigint, initial: ShardState, untilDone: boolean): Promise<ShardState> {
  const { logger, metrics, settings, closing, shard } = ctx.deps;
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
      await ctx.setHalted({ afterSeq: decision.afterSeq, throughSeq: decision.throughSeq });
      metrics.chainHalts.inc({ shard });
      const delayMs = backoffDelayMs(attempt++, settings.retryInitialMs * 20, settings.retryMaxMs * 6);
      logger.fatal(
        { shard, jobId, afterSeq: decision.afterSeq, throughSeq: decision.throughSeq, delayMs },
        'chain broken: no job in Redis holds the messages of this shard after afterSeq through throughSeq; shard halted until they are re-sent (the engine replays them to the ingestor from its replay endpoint, see README "When a shard halts")',
      );
      if (!untilDone) return ctx.readState(jobId);
      if (closing.isSet) throw new ShutdownRequestedError(shard);
      await closing.sleep(delayMs);
      if (closing.isSet) throw new ShutdownRequestedError(shard);
    }
    state = await ctx.readState(jobId);
  }
  await ctx.setHalted(undefined);
  return state;
}
