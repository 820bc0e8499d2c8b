/**
 * fix_balance: a correction is a job on the shard's own settlement queue, so the shard's settler
 * (its single writer) applies it, in order with the shard's settlement jobs, exactly once (the
 * settler records the correction id). The reconciler never writes a balance row itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import type { ConnectionOptions, Queue } from 'bullmq';
import { CORRECT_JOB_NAME, decodeCorrectionJob, encodeBigints, type CorrectionJob } from '@settlement/domain';
import { createSettlementQueue, type Logger } from '@settlement/runtime';

export interface CorrectionRow {
  readonly userId: bigint;
  readonly assetId: number;
  /** expected − actual, minor units. */
  readonly availableDelta: bigint;
  readonly lockedDelta: bigint;
  /** Stored version the delta was measured against (0: no row). */
  readonly version: bigint;
  /**
   * Stored values the delta was measured against (0: no row), minor units. The settler applies
   * the delta only while the row still holds them and `version`: a correction keeps the row's
   * version, so a row already corrected differs from the measured one only in its values.
   */
  readonly availableBefore: bigint;
  readonly lockedBefore: bigint;
}

/** Where a correction job ended up: a BullMQ state, or 'timeout' when the wait ran out. */
export type CorrectionOutcome = 'completed' | 'failed' | 'timeout' | 'aborted';

export interface SentCorrection {
  readonly shard: string;
  readonly correctionId: string;
  readonly rows: readonly CorrectionRow[];
  readonly outcome: CorrectionOutcome;
}

export interface CorrectionSenderOptions {
  readonly connection: ConnectionOptions;
  /** BullMQ key prefix (config redis.prefix). */
  readonly prefix: string;
  readonly logger: Logger;
  /** How often a correction's state is polled while waiting, ms. Default 100. */
  readonly pollIntervalMs?: number;
}

/** Rows per correction job (the job schema's bound). */
const ROWS_PER_CORRECTION = 1000;

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * The id is derived from what was measured (shard, and per row: user, asset, the stored
 * version and values, the delta), never from the run: two runs that find the same mismatch
 * (a second `--fix` while the first run's corrections wait for a behind settler) send the same
 * id, which BullMQ (same job id) and the settler (balance_corrections) both deduplicate. Runs
 * that group rows differently send different ids; then the settler's check of the measured
 * state keeps a row from being corrected twice. The price: the same corruption happening
 * again to a corrected row, before any message moves that row, maps to the applied id and is
 * not corrected again until the row moves.
 */
export function correctionId(shard: string, rows: readonly CorrectionRow[]): string {
  const content = rows.map((r) => `${r.userId}/${r.assetId}/${r.version}/${r.availableBefore}/${r.lockedBefore}/${r.availableDelta}/${r.lockedDelta}`).join(';');
  return `rc-${shard}-${shortHash(`${shard}|${content}`, 32)}`;
}

export class CorrectionSender {
  private readonly queues = new Map<string, Queue>();
  private readonly pollIntervalMs: number;

  constructor(private readonly options: CorrectionSenderOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
  }

  /**
   * Enqueues the rows of each shard (in chunks of at most 1000) and waits until the settlers
   * have finished them, `waitMs` at most.
   */
  async apply(reconciliationJobId: string, rowsByShard: ReadonlyMap<string, readonly CorrectionRow[]>, waitMs: number, signal?: AbortSignal): Promise<SentCorrection[]> {
    const sent: Array<{ shard: string; correctionId: string; rows: readonly CorrectionRow[]; queue: Queue }> = [];
    for (const [shard, rows] of rowsByShard) {
      const queue = this.queue(shard);
      for (let i = 0; i < rows.length; i += ROWS_PER_CORRECTION) {
        const chunk = rows.slice(i, i + ROWS_PER_CORRECTION);
        const id = correctionId(shard, chunk);
        const payload = encodeBigints<CorrectionJob>({ v: 1, shard, correctionId: id, reconciliationJobId, rows: chunk.map((r) => ({ ...r })) });
        // Checked where it is built, as the settler will check it where it is read.
        decodeCorrectionJob(payload);
        // An earlier run's job with this id (still queued, or kept after it finished) makes
        // this add a no-op; this run then waits for that job.
        await queue.add(CORRECT_JOB_NAME, payload, { jobId: id });
        this.options.logger.info({ shard, correctionId: id, reconciliationJobId, rows: chunk.length }, 'correction enqueued');
        sent.push({ shard, correctionId: id, rows: chunk, queue });
      }
    }
    const deadline = Date.now() + waitMs;
    const outcomes = new Map<string, CorrectionOutcome>();
    while (outcomes.size < sent.length) {
      for (const s of sent) {
        if (outcomes.has(s.correctionId)) continue;
        const state = await s.queue.getJobState(s.correctionId);
        if (state === 'completed' || state === 'failed') outcomes.set(s.correctionId, state);
      }
      if (outcomes.size === sent.length) break;
      if (signal?.aborted || Date.now() >= deadline) {
        const outcome: CorrectionOutcome = signal?.aborted ? 'aborted' : 'timeout';
        for (const s of sent) if (!outcomes.has(s.correctionId)) outcomes.set(s.correctionId, outcome);
        break;
      }
      await sleep(this.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
    return sent.map((s) => ({ shard: s.shard, correctionId: s.correctionId, rows: s.rows, outcome: outcomes.get(s.correctionId)! }));
  }

  private queue(shard: string): Queue {
    let queue = this.queues.get(shard);
    if (queue === undefined) {
      queue = createSettlementQueue(shard, { connection: this.options.connection, prefix: this.options.prefix });
      this.queues.set(shard, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
