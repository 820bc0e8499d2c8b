/**
 * The payload of a reconciliation job: enqueued hourly by the scheduler, or on demand from
 * bull-board, the CLI or the HTTP API.
 */
import { z } from 'zod';
import { DomainError } from './domain-error.js';

export const RECONCILE_JOB_NAME = 'reconcile';
/** Id of the job scheduler that checks, every interval, the users whose balances changed. */
export const RECONCILE_SCHEDULER_ID = 'reconcile-hourly';
/** Id of the job scheduler of the full sweep (every user, conservation), on a longer interval. */
export const RECONCILE_FULL_SCHEDULER_ID = 'reconcile-full';

const userId = z
  .union([z.string().regex(/^\d{1,19}$/, 'must be a decimal user id'), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)])
  .transform((v) => BigInt(v));

export const reconcileJobSchema = z.discriminatedUnion(
  'mode',
  [
    z.object({ mode: z.literal('sample'), size: z.number().int().positive().max(1_000_000).optional(), fix: z.boolean().default(false), trigger: z.string().max(50).optional() }),
    z.object({ mode: z.literal('users'), userIds: z.array(userId).min(1).max(100_000), fix: z.boolean().default(false), trigger: z.string().max(50).optional() }),
    z.object({ mode: z.literal('full'), fix: z.boolean().default(false), trigger: z.string().max(50).optional() }),
    /** The users whose balances changed in the last `hours` hours (default: the scheduled interval and one more). */
    z.object({ mode: z.literal('changed'), hours: z.number().int().positive().max(48).optional(), fix: z.boolean().default(false), trigger: z.string().max(50).optional() }),
  ],
  { error: 'mode must be one of sample, users, full, changed' },
);

export type ReconcileJobRequest = z.output<typeof reconcileJobSchema>;
/** What a producer sends (user ids as decimal strings). */
export type ReconcileJobPayload = z.input<typeof reconcileJobSchema>;

export function decodeReconcileJob(data: unknown): ReconcileJobRequest {
  const result = reconcileJobSchema.safeParse(data);
  if (!result.success) {
    const detail = result.error.issues.map((i) => `${i.path.join('.') || 'mode'}: ${i.message}`).join('; ');
    throw new DomainError('INVALID_JOB', `Invalid reconcile job: ${detail}`, result.error.issues[0]?.path.join('.'));
  }
  return result.data;
}
