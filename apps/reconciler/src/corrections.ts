/**
 * fix_balance: a correction is a job on the shard's own settlement queue, so the shard's settler
 * (its single writer) applies it, in order with the shard's settlement jobs, exactly once (the
 * settler records the correction id). The reconciler never writes a balance row itself.
 */
import { createHash } from 'node:crypto';
import type { ConnectionOptions, Queue } from 'bullmq';
import { CORRECT_JOB_NAME, decodeCorrectionJob, encodeBigints, type CorrectionJob } from '@settlement/domain';
import { createSettlementQueue, type Logger } from '@settlement/runtime';
import { sleep } from './bounded.js';

export interface CorrectionRow {
  readonly userId: bigint;
  readonly assetId: number;
  /** expected − actual, minor units. */
  readonly availableDelta: bigint;
  readonly lockedDelta: bigint;
  /** Stored version the delta was measured against (0: no row). */
  readonly version?: bigint | undefined;
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
 * The id is derived from the run and the rows, so a retried run that finds the same rows sends
 * the same id, which BullMQ and the settler both deduplicate.
 */
export function correctionId(reconciliationJobId: string, shard: string, rows: readonly CorrectionRow[]): string {
  const content = rows.map((r) => `${r.userId}/${r.assetId}/${r.availableDelta}/${r.lockedDelta}`).join(';');
  return `rc-${shortHash(reconciliationJobId, 10)}-${shard}-${shortHash(content, 16)}`;
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
        const id = correctionId(reconciliationJobId, shard, chunk);
        const payload = encodeBigints<CorrectionJob>({ v: 1, shard, correctionId: id, reconciliationJobId, rows: chunk.map((r) => ({ ...r })) });
        // Checked where it is built, as the settler will check it where it is read.
        decodeCorrectionJob(payload);
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
      await sleep(this.pollIntervalMs, signal);
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
