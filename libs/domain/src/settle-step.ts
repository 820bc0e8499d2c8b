/**
 * The settle decision of one job, without I/O: given what storage holds for the shard now and
 * what the settler knows, either the chain must be repaired first, or the job applies from a
 * floor — the messages above it are planned (settle-plan.ts), those at or below it are skipped.
 *
 * The rules, each with the failure it answers (docs/ARCHITECTURE.md has the whole argument):
 * - Storage must hold the job's predecessor (`prevLastSeq`) and everything this settler saw
 *   acknowledged: a job BullMQ failed, or batches a crashed node lost (periodic commit log),
 *   would otherwise be skipped for good. Then: recover, i.e. apply the retained jobs first.
 *   A job applied during a recovery only needs its own predecessor: the recovery goes on.
 * - When the view is read after a doubt, the job whose batch wrote the stored watermark is
 *   applied again first, from its own start, through the row versions, even though it was
 *   acknowledged: a batch reaches the commit log as one entry per partition, so a node that
 *   lost its unsynced tail can keep the watermark's partition and lose another of the same
 *   batch (a user's balance and history rows). Going on from that watermark would build on the
 *   user's old rows for good. Once per doubt: the settler remembers it checked that job.
 * - A job whose own batch wrote the stored watermark, which this settler did not see
 *   acknowledged (it reads state it does not remember), is *resumed*: its writer died mid-write,
 *   and a LOGGED BATCH is atomic but not isolated, so part of it may still wait for the
 *   batchlog. It is applied again from its own start through the row versions.
 * - Otherwise the job applies above the watermark: messages at or below it were settled.
 */
import { DomainError } from './domain-error.js';
import type { SettlementMessage } from './messages.js';
import { parseSettlementJobId } from './job.js';
import type { PlannedDeadLetter } from './settle-plan.js';

/** The shard's stored state as the settler knows it. */
export interface StoredShardView {
  /** Watermark: highest sequence settled. */
  readonly lastSeq: bigint;
  /** The job whose batch wrote the watermark (as read from storage); undefined if unknown. */
  readonly lastJobId?: string | undefined;
}

export interface SettleStepInput {
  readonly stored: StoredShardView;
  /**
   * The view is what this settler remembers of its own acknowledged writes (no storage event
   * and no other writer since); false when it was just read from storage.
   */
  readonly trusted: boolean;
  readonly jobId: string;
  readonly prevLastSeq: bigint;
  /** Valid messages, strictly increasing in seq, all above prevLastSeq. */
  readonly messages: readonly SettlementMessage[];
  /** Messages the decoder rejected, with the sequence they carried when usable. */
  readonly rejected: readonly PlannedDeadLetter[];
  /** Highest watermark this settler saw acknowledged. */
  readonly acknowledgedSeq: bigint;
  /** The job is applied by a chain recovery. */
  readonly recovering: boolean;
  /**
   * The job that wrote the stored watermark (`stored.lastJobId`) was applied again, or found
   * gone from Redis, since the view was last in doubt.
   */
  readonly watermarkJobChecked: boolean;
  /** Apply the job from its own start: it is the watermark's job, applied again. */
  readonly resume?: boolean | undefined;
}

export type SettleStep =
  /** Apply the job that wrote the stored watermark again first (from its start), then decide again. */
  | { readonly kind: 'reapply-watermark-job'; readonly watermarkJobId: string }
  /** Storage is behind `requiredSeq`: apply the retained jobs up to it first, then decide again. */
  | { readonly kind: 'recover'; readonly requiredSeq: bigint }
  | {
      readonly kind: 'apply';
      /** Messages at or below it are not planned. */
      readonly floor: bigint;
      /** The job is applied again from its own start (its writer stopped mid-write). */
      readonly resumed: boolean;
      readonly pending: readonly SettlementMessage[];
      readonly rejected: readonly PlannedDeadLetter[];
      /** Messages and rejections at or below the floor. */
      readonly skipped: number;
    };

export function decideSettleStep(input: SettleStepInput): SettleStep {
  assertJobShape(input);
  const { stored } = input;
  const watermarkJobId = input.recovering ? undefined : watermarkJobToReapply(input);
  if (watermarkJobId !== undefined) return { kind: 'reapply-watermark-job', watermarkJobId };
  // What must be stored before the job applies: its predecessor, and everything this settler saw
  // acknowledged unless the job itself carries it (a job re-sent after Redis lost the queue
  // continues the stored watermark and reaches the acknowledged sequence: it is the repair).
  const carriesAcknowledged = input.acknowledgedSeq <= input.prevLastSeq || input.acknowledgedSeq <= highestSeqOf(input);
  const required = input.recovering || carriesAcknowledged ? input.prevLastSeq : input.acknowledgedSeq;
  if (required > stored.lastSeq) return { kind: 'recover', requiredSeq: required };

  const resumed = input.resume === true || (!input.trusted && stored.lastJobId === input.jobId && input.prevLastSeq < stored.lastSeq);
  const floor = resumed ? input.prevLastSeq : stored.lastSeq;
  const pending = floor === 0n ? input.messages : input.messages.filter((m) => m.seq > floor);
  const rejected = input.rejected.filter((r) => r.seq === undefined || r.seq > floor);
  const skipped = input.messages.length - pending.length + (input.rejected.length - rejected.length);
  return { kind: 'apply', floor, resumed, pending, rejected, skipped };
}

/**
 * The job that wrote the stored watermark, when it must be applied again before anything else
 * (the view was read after a doubt and that job was not checked since); undefined otherwise.
 * Settle jobs and verify jobs both ask.
 */
export function watermarkJobToReapply(input: Pick<SettleStepInput, 'stored' | 'trusted' | 'watermarkJobChecked' | 'jobId'>): string | undefined {
  const id = input.stored.lastJobId;
  return input.trusted || input.watermarkJobChecked || id === undefined || id === input.jobId ? undefined : id;
}

export type GoneWatermarkJob =
  /**
   * Have the engine re-send the job's range (`afterSeq` = the sequence before its first
   * message, `throughSeq` = its last) and apply what comes back from its own start, through
   * the row versions, before anything else.
   */
  | { readonly kind: 'redrive'; readonly afterSeq: bigint; readonly throughSeq: bigint }
  /** Written longer ago than the retention: storage synced that batch long since. */
  | { readonly kind: 'durable'; readonly ageMs: number }
  /** Not a settlement job of this shard (a correction, an id from before ids named ranges). */
  | { readonly kind: 'not-a-settlement-job' }
  /** Nothing can re-send it: the ingestor has no replay endpoint (a documented limit, README). */
  | { readonly kind: 'no-replay'; readonly afterSeq: bigint; readonly throughSeq: bigint };

/**
 * The job that wrote the stored watermark must be applied again (watermarkJobToReapply) but
 * Redis no longer holds it: Redis came back empty, or the job aged out of the retention.
 *
 * Within the retention window (`retainedMs`, sized at several commit-log sync windows) the
 * batch may still be held only in part — a node killed before its sync kept the watermark's
 * partition and lost a user's rows — and only the engine can give the messages back: its
 * range is re-driven. Going on without it would build on the user's old rows for good (seen in
 * a chaos run: a node lost its tail mid-batch and Redis came back empty in the same recovery).
 * Older than that, the batch was synced long ago: nothing can be missing. The age is the
 * writer's wall clock (`updated_at`) against ours; clocks minutes apart do not matter against
 * a window of an hour. An unknown write time is taken as recent: re-sending is safe, skipping is not.
 * Without a replay endpoint (`engineCanResend` false) nothing can give the messages back:
 * halting would stop the shard for good after every Redis restart, so it is reported instead.
 */
export function goneWatermarkJob(input: {
  readonly shard: string;
  readonly watermarkJobId: string;
  readonly writtenAtMs: number | undefined;
  readonly nowMs: number;
  readonly retainedMs: number;
  readonly engineCanResend: boolean;
}): GoneWatermarkJob {
  const range = parseSettlementJobId(input.watermarkJobId);
  if (range === undefined || range.shard !== input.shard) return { kind: 'not-a-settlement-job' };
  if (input.writtenAtMs !== undefined) {
    const ageMs = input.nowMs - input.writtenAtMs;
    if (ageMs > input.retainedMs) return { kind: 'durable', ageMs };
  }
  const lost = { afterSeq: range.firstSeq - 1n, throughSeq: range.lastSeq };
  return input.engineCanResend ? { kind: 'redrive', ...lost } : { kind: 'no-replay', ...lost };
}

/** The highest sequence the job carries, valid or rejected (a dead letter is settled too); prevLastSeq when none. */
function highestSeqOf(input: Pick<SettleStepInput, 'prevLastSeq' | 'messages' | 'rejected'>): bigint {
  let highest = input.messages.at(-1)?.seq ?? input.prevLastSeq;
  for (const r of input.rejected) if (r.seq !== undefined && r.seq > highest) highest = r.seq;
  return highest;
}

/** The job as the settler must have decoded it: a chain link whose messages follow its predecessor in order. */
function assertJobShape(input: SettleStepInput): void {
  let previous = input.prevLastSeq;
  for (const message of input.messages) {
    if (message.seq <= previous) {
      throw new DomainError('INVALID_JOB', `Invalid settlement job ${input.jobId}: messages.seq: ${message.seq} is not above ${previous}`, 'messages.seq');
    }
    previous = message.seq;
  }
}
