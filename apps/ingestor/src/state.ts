/**
 * The ingestor's persisted position, kept in the Redis hash ingestPositionKey (libs/domain redis-keys.ts)
 * and written in the same MULTI as the jobs: field = shard, value = last enqueued sequence
 * (decimal). Two more fields: "global" (with sequence_scope global: every trade sequence at or
 * below it is in a job or recorded as a gap) and "funding:assigned" (the last sequence the
 * ingestor assigned to a funding event the engine sent with sequence_id 0).
 */
import { FUNDING_SHARD } from '@settlement/domain';
import type { EnqueueUnit } from './enqueue-unit.js';

export const GLOBAL_STREAM = 'global';
export const FUNDING_ASSIGNED_FIELD = 'funding:assigned';

/** The position hash's key (defined once for every process in libs/domain). */
export { ingestPositionKey as stateKey } from '@settlement/domain';

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

export interface RebuildInput {
  /** The state hash as Redis holds it now (empty after Redis came back without its data). */
  readonly hash: Readonly<Record<string, string>>;
  /** Shard → last settled sequence (Cassandra shard_watermarks). */
  readonly watermarks: ReadonlyMap<string, bigint>;
  /** Every trade shard of the catalog (symbols). */
  readonly tradeShards: readonly string[];
  readonly sequenceScope: 'global' | 'per_symbol';
}

export interface RebuiltState {
  readonly state: Map<string, bigint>;
  /** Fields raised from the watermarks (Redis held less than what is settled, or nothing). */
  readonly raised: readonly string[];
}

/**
 * The position to resume from when Redis may have lost writes. Pure.
 *
 * - Each shard: the higher of what Redis holds and the shard's settled watermark. Redis
 *   replicates MULTIs whole and in order, so what it still holds is a consistent older
 *   snapshot; the watermark is what the settlers applied, which is never lost by Redis.
 *   The shard's next job then continues the settler's chain (prevLastSeq = watermark).
 * - "global" (sequence_scope global): kept from Redis when it holds it (every trade sequence at
 *   or below it was in a job of that snapshot, settled or still queued there); else the lowest
 *   trade shard position, the lowest point from which the engine's replay re-sends every trade
 *   not yet settled. (A shard that never settled anything pulls it down to 0: a longer replay,
 *   whose messages at or below each shard's position are dropped as duplicates, never a loss.)
 * - per_symbol: each symbol's stream position is its shard's.
 * - "funding:assigned" is kept as Redis holds it: unnumbered funding events cannot be replayed.
 */
export function rebuildState(input: RebuildInput): RebuiltState {
  const state = mergeState(input.hash, []);
  const raised: string[] = [];
  for (const shard of [...input.tradeShards, FUNDING_SHARD]) {
    const watermark = input.watermarks.get(shard) ?? 0n;
    if (watermark > (state.get(shard) ?? 0n)) {
      state.set(shard, watermark);
      raised.push(shard);
    }
  }
  if (input.sequenceScope === 'global' && input.hash[GLOBAL_STREAM] === undefined) {
    let lowest: bigint | undefined;
    for (const shard of input.tradeShards) {
      const at = state.get(shard) ?? 0n;
      if (lowest === undefined || at < lowest) lowest = at;
    }
    if (lowest !== undefined && lowest > 0n) {
      state.set(GLOBAL_STREAM, lowest);
      raised.push(GLOBAL_STREAM);
    }
  }
  return { state, raised };
}

/** The state as hash fields (decimal strings). */
export function stateFields(state: IngestState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, seq] of state) out[field] = seq.toString();
  return out;
}
