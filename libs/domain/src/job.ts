/**
 * Payloads of settlement jobs in BullMQ. Job data is JSON, which has no bigint, so every id and
 * amount travels as a decimal string and is validated and converted back on the way out.
 */
import { z } from 'zod';
import { DomainError } from './domain-error.js';
import { FundingEventType, type FundingMessage, type SettlementMessage, type TradeMessage } from './messages.js';

export const SETTLE_JOB_NAME = 'settle';
export const CORRECT_JOB_NAME = 'correct';
/**
 * A job without messages that makes the shard's settler check storage against the chain of
 * acknowledged jobs (added after Cassandra came back, or a shard was taken over while idle).
 */
export const VERIFY_JOB_NAME = 'verify';

/** Id of a verify job: not of the `<shard>-<first>-<last>` form, so never taken for a settlement job. */
export function verifyJobId(shard: string, atMs: number): string {
  return `verify.${shard}.${atMs}`;
}

const verifyJobData = z.object({
  v: z.literal(1),
  shard: z.string(),
  acknowledgedSeq: z.string().regex(/^\d{1,19}$/, 'must be an unsigned decimal integer string').transform((v) => BigInt(v)).optional(),
});

/** What a verify job asks for (job data `{ v: 1, shard, acknowledgedSeq? }`). */
export interface VerifyJobRequest {
  /**
   * The highest watermark the requesting settler saw acknowledged: storage must reach it. It may
   * be the only record of those batches left (Redis came back without their jobs, the node
   * without their rows, and the shard moved to a settler that never saw them).
   */
  readonly acknowledgedSeq: bigint | undefined;
}

/** The data of a verify job; throws DomainError naming the field when it cannot be read. */
export function decodeVerifyJob(data: unknown): VerifyJobRequest {
  const result = verifyJobData.safeParse(data);
  if (!result.success) throw invalidJob('verify job', result.error.issues);
  return { acknowledgedSeq: result.data.acknowledgedSeq };
}

/** The data of a verify job asking storage to reach `acknowledgedSeq`. */
export function encodeVerifyJob(shard: string, acknowledgedSeq: bigint): { v: 1; shard: string; acknowledgedSeq: string } {
  return { v: 1, shard, acknowledgedSeq: acknowledgedSeq.toString() };
}

const decimal = z.string().regex(/^-?\d{1,20}$/, 'must be a decimal integer string').transform((v) => BigInt(v));
const unsignedDecimal = z.string().regex(/^\d{1,20}$/, 'must be an unsigned decimal integer string').transform((v) => BigInt(v));
const assetId = z.number().int().positive();
const shardName = z.string().regex(/^[a-z][a-z0-9_]{0,40}$/, 'must be a shard name');

const tradeJobMessage = z.object({
  kind: z.literal('trade'),
  shard: shardName,
  seq: unsignedDecimal,
  tradeId: unsignedDecimal,
  buyOrderId: unsignedDecimal,
  sellOrderId: unsignedDecimal,
  buyerUserId: unsignedDecimal,
  sellerUserId: unsignedDecimal,
  price: unsignedDecimal,
  quantity: unsignedDecimal,
  quoteAmount: unsignedDecimal,
  baseAsset: assetId,
  quoteAsset: assetId,
  buyerRefund: unsignedDecimal,
  sellerRefund: unsignedDecimal,
  buyerFee: unsignedDecimal,
  sellerFee: unsignedDecimal,
  matchSeq: unsignedDecimal,
  outputSequence: unsignedDecimal,
  settledAt: unsignedDecimal,
  buyerQuoteVersion: unsignedDecimal,
  buyerBaseVersion: unsignedDecimal,
  sellerBaseVersion: unsignedDecimal,
  sellerQuoteVersion: unsignedDecimal,
}) satisfies z.ZodType<TradeMessage, unknown>;

const fundingJobMessage = z.object({
  kind: z.literal('funding'),
  shard: shardName,
  seq: unsignedDecimal,
  userId: unsignedDecimal,
  sequenceId: unsignedDecimal,
  eventType: z.enum(Object.values(FundingEventType) as [FundingEventType, ...FundingEventType[]]),
  amount: unsignedDecimal,
  currency: assetId,
  relatedId: unsignedDecimal,
  createdAt: unsignedDecimal,
}) satisfies z.ZodType<FundingMessage, unknown>;

export const settlementJobSchema = z
  .object({
    v: z.literal(1),
    shard: shardName,
    /** Last sequence of the job enqueued before this one on the shard; "0" for the first. */
    prevLastSeq: unsignedDecimal,
    messages: z.array(z.discriminatedUnion('kind', [tradeJobMessage, fundingJobMessage])).min(1).max(10_000),
  })
  .superRefine((job, ctx) => {
    let previous = job.prevLastSeq;
    job.messages.forEach((message, i) => {
      if (message.shard !== job.shard) {
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'shard'], message: `is ${message.shard}, job shard is ${job.shard}` });
      }
      if (message.seq <= previous) {
        ctx.addIssue({ code: 'custom', path: ['messages', i, 'seq'], message: `${message.seq} is not above ${previous}` });
      }
      previous = message.seq;
    });
  });

export type SettlementJob = z.output<typeof settlementJobSchema>;

const correctionRow = z
  .object({
    userId: unsignedDecimal,
    assetId,
    /** expected − actual at the time of the check, minor units. */
    availableDelta: decimal,
    lockedDelta: decimal,
    /**
     * Version of the stored row the delta was measured against (0: no row). When the row
     * has moved on since (a settle job rewrote it), the delta no longer applies and the
     * settler leaves the row alone; the next reconciliation looks at it again.
     */
    version: unsignedDecimal.optional(),
    /**
     * The stored row's values the delta was measured against (0 and 0: no row), minor units.
     * A correction does not move a row's version, so the version alone cannot tell a row
     * already corrected (by an earlier correction of the same mismatch) from the row measured:
     * the settler applies the delta only while the row still holds these values. Both or
     * neither; jobs without them (older reconcilers) are checked on the version only.
     */
    availableBefore: decimal.optional(),
    lockedBefore: decimal.optional(),
  })
  .superRefine((row, ctx) => {
    if ((row.availableBefore === undefined) !== (row.lockedBefore === undefined)) {
      const missing = row.availableBefore === undefined ? 'availableBefore' : 'lockedBefore';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'is required when the other before-value is given' });
    }
  });

/** A fix from the reconciler: deltas to one shard's rows, applied once by that shard's settler. */
export const correctionJobSchema = z.object({
  v: z.literal(1),
  shard: shardName,
  /**
   * Unique per measured mismatch; the settler records it so a redelivered correction, or the
   * same mismatch sent again by another reconciliation run, is not applied twice.
   */
  correctionId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'must be letters, digits, _ or -'),
  reconciliationJobId: z.string().min(1).max(200),
  rows: z.array(correctionRow).min(1).max(1000),
});

export type CorrectionJob = z.output<typeof correctionJobSchema>;

/** The JSON shape of a job: every bigint as a decimal string. */
export type Encoded<T> = { [K in keyof T]: T[K] extends bigint ? string : T[K] extends readonly (infer U)[] ? Encoded<U>[] : T[K] extends object ? Encoded<T[K]> : T[K] };

export function encodeBigints<T>(value: T): Encoded<T> {
  if (typeof value === 'bigint') return value.toString() as Encoded<T>;
  if (Array.isArray(value)) return value.map((v) => encodeBigints(v)) as Encoded<T>;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encodeBigints(v);
    return out as Encoded<T>;
  }
  return value as Encoded<T>;
}

export function encodeSettlementJob(shard: string, prevLastSeq: bigint, messages: readonly SettlementMessage[]): Encoded<SettlementJob> {
  return encodeBigints({ v: 1 as const, shard, prevLastSeq, messages: [...messages] });
}

function invalidJob(what: string, issues: readonly z.core.$ZodIssue[]): DomainError {
  const detail = issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return new DomainError('INVALID_JOB', `Invalid ${what}: ${detail}`, issues[0]?.path.join('.'));
}

export function decodeSettlementJob(data: unknown): SettlementJob {
  const result = settlementJobSchema.safeParse(data);
  if (!result.success) throw invalidJob('settlement job', result.error.issues);
  return result.data;
}

export function decodeCorrectionJob(data: unknown): CorrectionJob {
  const result = correctionJobSchema.safeParse(data);
  if (!result.success) throw invalidJob('correction job', result.error.issues);
  return result.data;
}

/** BullMQ rejects ':' in custom job ids, hence '-'. */
export function settlementJobId(shard: string, firstSeq: bigint, lastSeq: bigint): string {
  return `${shard}-${firstSeq}-${lastSeq}`;
}

/** Queue of one shard. */
export function settlementQueueName(shard: string): string {
  return `settle-${shard}`;
}

export const RECONCILIATION_QUEUE = 'reconcile';
export const DEAD_LETTER_QUEUE = 'dead-letter';

/** A settlement job id read back: its shard and the range of sequences it covers; undefined for any other id. */
export function parseSettlementJobId(jobId: string): { shard: string; firstSeq: bigint; lastSeq: bigint } | undefined {
  const match = /^([a-z][a-z0-9_]{0,40})-(\d{1,20})-(\d{1,20})(?:[^\d].*)?$/.exec(jobId);
  if (match === null) return undefined;
  const firstSeq = BigInt(match[2]!);
  const lastSeq = BigInt(match[3]!);
  return firstSeq <= lastSeq ? { shard: match[1]!, firstSeq, lastSeq } : undefined;
}
