/**
 * Reads the heartbeats every app publishes to Redis (libs/runtime startHeartbeat): which
 * instances are alive, their status, and their prom-client metrics for /metrics.
 */
import type { Redis } from 'ioredis';
import { heartbeatPattern } from '@settlement/domain';
import { decodeHeartbeat, type Heartbeat } from '@settlement/runtime';

/** Keys scanned per SCAN call. */
const SCAN_COUNT = 200;

export interface HeartbeatScan {
  readonly heartbeats: Heartbeat[];
  /** Keys whose value was not a heartbeat (skipped, not fatal). */
  readonly invalid: number;
}

/**
 * Live instances: a heartbeat key expires three intervals after the last beat, so every key
 * present belongs to a process that beat recently. At most `instancesMax` are read.
 */
export async function readHeartbeats(redis: Redis, prefix: string, instancesMax = 1_000): Promise<HeartbeatScan> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', heartbeatPattern(prefix), 'COUNT', SCAN_COUNT);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0' && keys.length < instancesMax);
  const wanted = [...new Set(keys)].slice(0, instancesMax).sort();
  if (wanted.length === 0) return { heartbeats: [], invalid: 0 };
  const values = await redis.mget(...wanted);
  const heartbeats: Heartbeat[] = [];
  let invalid = 0;
  for (const value of values) {
    // A key can expire between SCAN and MGET.
    if (value === null) continue;
    const heartbeat = decodeHeartbeat(value);
    if (heartbeat !== undefined) heartbeats.push(heartbeat);
    else invalid += 1;
  }
  return { heartbeats, invalid };
}
