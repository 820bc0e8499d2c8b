/**
 * A 'changed' reconciliation: the users whose balances the settlers changed in the last hours
 * (libs/runtime ChangedUsers), checked one by one — every error of a written balance found within
 * the hour, not only in a sample. More than `reconciliation.changed_users_max` users: a full run.
 */
import type { ReconcileJobRequest } from '@settlement/domain';
import { hourOf, HOUR_MS, type ChangedUsers } from '@settlement/runtime';

export type ResolvedRequest = Exclude<ReconcileJobRequest, { mode: 'changed' }>;

export async function resolveChanged(
  request: ReconcileJobRequest,
  source: Pick<ChangedUsers, 'between'> | undefined,
  reconciliation: { interval_seconds: number; changed_users_max: number },
  nowMs = Date.now(),
): Promise<ResolvedRequest> {
  if (request.mode !== 'changed') return request;
  const { fix, trigger } = request;
  // Without the sets (no Redis here), only a full run can stand for "every changed user".
  if (source === undefined) return { mode: 'full', fix, trigger };
  // The interval, plus the hour it started in: runs overlap rather than leave a gap.
  const hours = request.hours ?? Math.ceil((reconciliation.interval_seconds * 1000) / HOUR_MS) + 1;
  const users = await source.between(hourOf(nowMs) - hours + 1, hourOf(nowMs), reconciliation.changed_users_max);
  if (users === 'overflow') return { mode: 'full', fix, trigger };
  return { mode: 'users', userIds: users, fix, trigger };
}
