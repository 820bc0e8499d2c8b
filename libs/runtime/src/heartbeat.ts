import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { heartbeatKey } from '@settlement/domain';

export interface Heartbeat {
  readonly app: string;
  readonly instanceId: string;
  readonly pid: number;
  /** Host (container) name, so a container healthcheck can find its own heartbeat. */
  readonly hostname: string;
  readonly startedAt: string;
  readonly updatedAt: string;
  /** prom-client `registry.getMetricsAsJSON()`, aggregated by the dashboard's /metrics. */
  readonly metrics: unknown[];
  /** App-specific status (the settler's: SettlerShardHeartbeat per shard, libs/domain). */
  readonly status: Record<string, unknown>;
}

const heartbeatSchema = z.object({
  app: z.string().min(1).max(100),
  instanceId: z.string().min(1).max(100),
  pid: z.number().int(),
  hostname: z.string().max(255),
  startedAt: z.string(),
  updatedAt: z.string(),
  metrics: z.array(z.unknown()),
  status: z.record(z.string(), z.unknown()),
});

/** Bigints as decimal strings (JSON has none). */
export function encodeHeartbeat(heartbeat: Heartbeat): string {
  return JSON.stringify(heartbeat, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** A heartbeat key's value; undefined when it is not one (a reader skips it and counts it). */
export function decodeHeartbeat(text: string): Heartbeat | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = heartbeatSchema.safeParse(parsed);
  return result.success ? result.data : undefined;
}

/**
 * Publishes this process's metrics and status to Redis every `intervalMs` with a TTL of three
 * intervals, so the dashboard can show live workers and aggregate /metrics without scraping
 * each process. Returns a stop function that deletes the key.
 */
export function startHeartbeat(options: {
  redis: Redis;
  prefix: string;
  app: string;
  registry: Registry;
  /** The process's Node.js metrics (createProcessMetrics), published with the app's. */
  processMetrics?: Registry | undefined;
  intervalMs?: number;
  status?: () => Record<string, unknown>;
}): { instanceId: string; stop: () => Promise<void> } {
  const intervalMs = options.intervalMs ?? 5_000;
  const instanceId = randomUUID().slice(0, 8);
  const key = heartbeatKey(options.prefix, options.app, instanceId);
  const startedAt = new Date().toISOString();
  const beat = async () => {
    // Status first: an app may bring its metrics up to date there (the ingestor syncs its
    // counters), so metrics read after it agree with the status of the same beat.
    const status = options.status?.() ?? {};
    const heartbeat: Heartbeat = {
      app: options.app,
      instanceId,
      pid: process.pid,
      hostname: hostname(),
      startedAt,
      updatedAt: new Date().toISOString(),
      metrics: [...(await options.registry.getMetricsAsJSON()), ...((await options.processMetrics?.getMetricsAsJSON()) ?? [])],
      status,
    };
    await options.redis.set(key, encodeHeartbeat(heartbeat), 'PX', intervalMs * 3);
  };
  // A missed beat (Redis down) is not an error of the app; the next one will do.
  const tick = () => void beat().catch(() => undefined);
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    instanceId,
    stop: async () => {
      clearInterval(timer);
      await options.redis.del(key).catch(() => undefined);
    },
  };
}
