/**
 * What a settler must apply before a job, when the shard's stored watermark is behind the chain
 * of jobs it knows were enqueued or acknowledged.
 *
 * Each settlement job records the last sequence of the job before it (`prevLastSeq`), so the
 * jobs of a shard form a chain. The stored watermark can be behind that chain for two reasons:
 * BullMQ failed a job that stalled too often (the queue went on without it), or storage went
 * back in time (a Cassandra with the periodic commit log acknowledged batches, then a kill -9
 * lost them). Either way the missing jobs are applied first, in chain order, from the jobs Redis
 * still holds — completed ones are retained for this (`settler.completed_jobs_retained_max`,
 * `settler.completed_jobs_retained_s`) — through the row versions, so what survived is not
 * applied twice. When no retained job continues the chain, the shard halts, naming the range:
 * it never guesses and never skips.
 */

/** A settlement job Redis still holds, as far as the chain is concerned. */
export interface RetainedJob {
  readonly jobId: string;
  /** Last sequence of the job enqueued before it. */
  readonly prevLastSeq: bigint;
  /** Last sequence it covers. */
  readonly lastSeq: bigint;
}

export type ChainRecovery =
  /** The watermark is at or past what is required: apply the job as it is. */
  | { readonly kind: 'in-order' }
  /** Apply these retained jobs first, in this order. */
  | { readonly kind: 're-apply'; readonly jobIds: readonly string[] }
  /** No retained job covers the sequences after `afterSeq` up to `throughSeq`: halt the shard. */
  | { readonly kind: 'halt'; readonly afterSeq: bigint; readonly throughSeq: bigint; readonly jobIds: readonly string[] };

export interface ChainRecoveryInput {
  /** The shard's watermark as just read from storage. */
  readonly watermark: bigint;
  /**
   * The sequence storage must reach before the job in hand applies: the job's `prevLastSeq`,
   * or more when this settler or a completed job knows that more was acknowledged.
   */
  readonly requiredSeq: bigint;
  readonly retained: readonly RetainedJob[];
  /** Bound on the jobs one recovery applies. */
  readonly jobsMax: number;
}

/**
 * Walks the chain from the watermark: at each step the retained job that continues it directly
 * (its predecessor ends at or below the current position and it reaches past it; among several,
 * the one whose predecessor is latest, i.e. the one enqueued right after the position).
 */
export function planChainRecovery(input: ChainRecoveryInput): ChainRecovery {
  if (input.watermark >= input.requiredSeq) return { kind: 'in-order' };
  const jobIds: string[] = [];
  let position = input.watermark;
  while (position < input.requiredSeq) {
    let next: RetainedJob | undefined;
    for (const job of input.retained) {
      if (job.prevLastSeq > position || job.lastSeq <= position) continue;
      if (next === undefined || job.prevLastSeq > next.prevLastSeq || (job.prevLastSeq === next.prevLastSeq && job.lastSeq > next.lastSeq)) next = job;
    }
    if (next === undefined || jobIds.length >= input.jobsMax) return { kind: 'halt', afterSeq: position, throughSeq: input.requiredSeq, jobIds };
    jobIds.push(next.jobId);
    position = next.lastSeq;
  }
  return { kind: 're-apply', jobIds };
}
