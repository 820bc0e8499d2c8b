/**
 * The ingestor's persisted position, kept in the Redis hash `${prefix}:ingest:last-enqueued`
 * and written in the same MULTI as the jobs: field = shard, value = last enqueued sequence
 * (decimal). Two more fields: "global" (with sequence_scope global: every trade sequence at or
 * below it is in a job or recorded as a gap) and "funding:assigned" (the last sequence the
 * ingestor assigned to a funding event the engine sent with sequence_id 0).
 */
import type { EnqueueUnit } from './enqueue-unit.js';

export const GLOBAL_STREAM = 'global';
export const FUNDING_ASSIGNED_FIELD = 'funding:assigned';

export function stateKey(prefix: string): string {
  return `${prefix}:ingest:last-enqueued`;
}

/** Field → sequence. Missing field = 0 (nothing enqueued yet). */
export type IngestState = ReadonlyMap<string, bigint>;

/** The hash as read from Redis, advanced by units still waiting in the spool (which are newer). */
export function mergeState(hash: Readonly<Record<string, string>>, spooled: readonly EnqueueUnit[]): Map<string, bigint> {
  const state = new Map<string, bigint>();
  const take = (field: string, value: string) => {
    if (!/^\d{1,20}$/.test(value)) throw new Error(`ingest state field ${field} holds ${JSON.stringify(value)}, not a sequence`);
    const seq = BigInt(value);
    if (seq > (state.get(field) ?? 0n)) state.set(field, seq);
  };
  for (const [field, value] of Object.entries(hash)) take(field, value);
  for (const unit of spooled) for (const [field, value] of Object.entries(unit.marks)) take(field, value);
  return state;
}
