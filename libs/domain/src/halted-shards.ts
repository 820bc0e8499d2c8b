/**
 * The contract between a halted settler and the ingestor (issue 16: nothing lost, nothing
 * skipped). A settler whose shard's chain has a hole no job in Redis holds — storage lost
 * acknowledged batches older than the retained jobs, or Redis came back empty — records the
 * range in the Redis hash haltedShardsKey (redis-keys.ts; field = shard), and removes it once the
 * chain is whole again. The ingestor reads the hash, asks the engine's replay endpoint for the
 * shard's messages in the range, and adds them as jobs continuing the chain from `afterSeq`;
 * the settler, still holding the job that found the hole, finds them in the wait list.
 */
import { z } from 'zod';
import { DomainError } from './domain-error.js';

export interface HaltedShardRange {
  /** Last sequence of the shard that storage holds. */
  readonly afterSeq: bigint;
  /** The sequence the chain must reach: the messages after afterSeq through it are missing. */
  readonly throughSeq: bigint;
  /** When the settler recorded it, ms since the epoch. */
  readonly haltedAtMs: number;
  /**
   * The range is the batch that wrote the stored watermark, to be applied again (settle-step.ts
   * goneWatermarkJob): storage may hold it only in part, so it is re-sent although the
   * watermark has reached `throughSeq` — until the watermark is past it.
   */
  readonly reapply?: boolean | undefined;
}

const seq = z.string().regex(/^\d{1,20}$/, 'must be an unsigned decimal integer string').transform((v) => BigInt(v));
const rangeSchema = z
  .object({ afterSeq: seq, throughSeq: seq, haltedAtMs: z.number().int().nonnegative(), reapply: z.boolean().optional() })
  .refine((r) => r.afterSeq < r.throughSeq, { message: 'afterSeq must be below throughSeq', path: ['throughSeq'] });

export function encodeHaltedShardRange(range: HaltedShardRange): string {
  return JSON.stringify({ afterSeq: range.afterSeq.toString(), throughSeq: range.throughSeq.toString(), haltedAtMs: range.haltedAtMs, ...(range.reapply === true ? { reapply: true } : {}) });
}

/** Decodes a field of the hash; a bad value names the field (it is then ignored by the reader, and logged). */
export function decodeHaltedShardRange(value: string): HaltedShardRange {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw new DomainError('INVALID_JOB', `Invalid halted-shard range: (root): not JSON: ${value.slice(0, 80)}`);
  }
  const result = rangeSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new DomainError('INVALID_JOB', `Invalid halted-shard range: ${issue.path.join('.') || '(root)'}: ${issue.message}`, issue.path.join('.'));
  }
  return result.data;
}
