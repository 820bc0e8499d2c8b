/**
 * A user's balance of an asset is the sum of rows that different shards write at their own
 * pace, so a sum read while the shards are at different points can be below zero for a moment:
 * a trade shard has released a lock that the funding shard has not yet applied. Such a
 * negative is only real if it survives once every shard has applied what was already enqueued
 * when it was seen (everything that could precede what the rows show).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { ingestPositionKey } from '@settlement/domain';
import type { ReconciliationReader } from '@settlement/scylla';


/** Last enqueued sequence per shard; shards the ingestor never wrote are absent. */
export async function readEnqueuedHeads(redis: Redis, prefix: string, shards: readonly string[]): Promise<Map<string, bigint>> {
  const values = await redis.hmget(ingestPositionKey(prefix), ...shards);
  const heads = new Map<string, bigint>();
  shards.forEach((shard, i) => {
    const value = values[i];
    if (value !== null && value !== undefined && /^\d{1,20}$/.test(value)) heads.set(shard, BigInt(value));
  });
  return heads;
}

/**
 * Waits until every shard's watermark is at least its head, `timeoutMs` at most. Returns
 * whether the cut was reached (false on timeout or abort).
 */
export async function waitForCut(reader: ReconciliationReader, heads: ReadonlyMap<string, bigint>, timeoutMs: number, signal?: AbortSignal, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const marks = await reader.shardWatermarks();
    if ([...heads].every(([shard, head]) => (marks.get(shard) ?? 0n) >= head)) return true;
    if (signal?.aborted || Date.now() >= deadline) return false;
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
}
