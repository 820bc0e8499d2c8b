/**
 * A reconciler correction, applied by the shard's own settler (single writer) once: recorded in
 * balance_corrections in the same batch as the rows it changes. Its deltas are expected − actual
 * as the reconciler read the stored rows, so they apply to the rows read from Cassandra now,
 * never to the cache: a row changed behind the settler differs from its cached copy, and the
 * difference is what is being corrected.
 */
import { DomainError, balanceRowKey, encodeBigints, correctionRowsNotVisible, planCorrection, type BalanceRow, type CorrectedRow, type CorrectionJob } from '@settlement/domain';
import type { CorrectionRecord } from '@settlement/scylla';
import type { BalanceCache } from './balance-cache.js';
import type { JobOutcome, ShardSettlerDeps, ShardState } from './shard-settler.js';

/** What a correction needs of its shard's settler. */
export interface CorrectionContext {
  readonly deps: ShardSettlerDeps;
  readonly cache: BalanceCache;
  /** Claims the shard and reads its watermark, the watermark's job applied again first if in doubt. */
  readState(jobId: string): Promise<ShardState>;
  /** Runs a Cassandra request the settler's way (no in-place retry; the job starts again). */
  cassandra<T>(op: string, fn: () => Promise<T>, fields?: Record<string, unknown>): Promise<T>;
  /** The fenced timestamp of the next batch. */
  stampBatch(state: ShardState, jobId: string): Promise<bigint>;
  noteWritten(state: ShardState, generation: number, jobId: string): void;
  deadLetter(jobId: string, reason: string, field: string | undefined, raw: string): Promise<{ deadLettered: 'job'; reason: string }>;
}

const keyOfRow = (row: BalanceRow) => balanceRowKey(row.userId, row.assetId);

export async function applyCorrection(ctx: CorrectionContext, jobId: string, correction: CorrectionJob): Promise<JobOutcome | { deadLettered: 'job'; reason: string }> {
  const { logger, balances } = ctx.deps;
  const shard = ctx.deps.shard;
  const [state, applied] = await Promise.all([ctx.readState(jobId), ctx.cassandra('read', () => balances.getAppliedCorrection(correction.correctionId), { jobId })]);
  if (applied !== undefined) {
    // Its batch wrote the watermark and the job came back: the writer stopped before it saw
    // the batch acknowledged, and the batch may be only partly visible (see settle()).
    const resumed = state.lastJobId === jobId && applied.rows !== undefined;
    const rewrite = resumed ? await rowsToRewrite(ctx, jobId, applied.rows!) : [];
    if (rewrite.length === 0) {
      logger.info({ shard, jobId, correctionId: correction.correctionId }, 'correction already applied');
      return { applied: 0, skipped: correction.rows.length, alreadySettled: 0, deadLettered: 0, batches: 0, lastSeq: state.lastSeq.toString() };
    }
    logger.warn({ shard, jobId, correctionId: correction.correctionId, rows: rewrite.length }, 'correction partly visible: writing its rows again');
    await writeCorrection(ctx, jobId, state, rewrite, undefined);
    return { applied: rewrite.length, skipped: correction.rows.length - rewrite.length, alreadySettled: 0, deadLettered: 0, batches: 1, lastSeq: state.lastSeq.toString() };
  }
  // Read after the claim: while this job holds the shard's one active slot no other settler
  // writes the shard, so the batch below replaces exactly the values read here.
  const stored = await ctx.cassandra('load_rows', () => balances.loadShardRows(shard, correction.rows), { jobId, rows: correction.rows.length });
  let corrected;
  try {
    corrected = planCorrection(correction.rows, (key) => stored.get(key), state.lastSeq);
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    return ctx.deadLetter(jobId, `Cannot apply correction ${correction.correctionId}: ${error.message}`, error.field, JSON.stringify(encodeBigints(correction)));
  }
  await writeCorrection(ctx, jobId, state, corrected.map((c) => c.after), { correctionId: correction.correctionId, reconciliationJobId: correction.reconciliationJobId, rows: corrected });
  logger.info(
    { shard, jobId, correctionId: correction.correctionId, rows: corrected.length, recreated: corrected.filter((c) => c.recreated).length, watermark: state.lastSeq },
    'correction applied',
  );
  // Rows whose stored state is no longer the one measured are left alone (planCorrection).
  return { applied: corrected.length, skipped: correction.rows.length - corrected.length, alreadySettled: 0, deadLettered: 0, batches: 1, lastSeq: state.lastSeq.toString() };
}

async function rowsToRewrite(ctx: CorrectionContext, jobId: string, applied: readonly CorrectedRow[]): Promise<BalanceRow[]> {
  const keys = applied.map((c) => ({ userId: c.after.userId, assetId: c.after.assetId }));
  const stored = await ctx.cassandra('load_rows', () => ctx.deps.balances.loadShardRows(ctx.deps.shard, keys), { jobId, rows: keys.length });
  return correctionRowsNotVisible(applied, (key) => stored.get(key));
}

/** One LOGGED BATCH: the corrected rows, the correction's record (first time only), the watermark. */
async function writeCorrection(ctx: CorrectionContext, jobId: string, state: ShardState, rows: BalanceRow[], record: CorrectionRecord | undefined): Promise<void> {
  const { metrics, writer, storage } = ctx.deps;
  const shard = ctx.deps.shard;
  const writeTs = await ctx.stampBatch(state, jobId);
  const batchCount = state.batchCount + 1n;
  const statements = writer.buildStatements({
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
  const generation = storage.generation;
  await ctx.cassandra('write', () => writer.execute(statements), { jobId, correctionId: record?.correctionId });
  metrics.batches.inc({ shard, kind: 'correct' });
  const next: ShardState = { lastSeq: state.lastSeq, writeTs, batchCount, exists: true, maxTradeId: state.maxTradeId };
  // The cache keeps only what it knew of the stored state just read; the corrected rows then
  // hold exactly what was written, so the next job builds on them.
  if (!ctx.cache.isCurrent(undefined, state)) ctx.cache.reset(state);
  ctx.cache.commit(rows, keyOfRow, next);
  ctx.noteWritten(next, generation, jobId);
  metrics.cacheRows.set({ shard }, ctx.cache.size);
}
