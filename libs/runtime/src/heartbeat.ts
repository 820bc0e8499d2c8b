import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
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
  /** App-specific status (e.g. per-shard sequences). */
  readonly status: Record<string, unknown>;
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
    const json = JSON.stringify(heartbeat, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    await options.redis.set(key, json, 'PX', intervalMs * 3);
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
