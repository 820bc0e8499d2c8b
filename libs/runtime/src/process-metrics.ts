import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Node.js metrics of this process (CPU, resident memory, heap, event-loop delay, GC pauses,
 * handles), labelled with its app: created once per process by runApp and published by the
 * process's heartbeat next to the app's own metrics. The dashboard's /metrics aggregates them
 * per app with prom-client's aggregators (CPU seconds and memory summed over the app's
 * processes, event-loop delay averaged), so a settler that falls behind shows whether its
 * event loop or its CPU is the cause.
 */
export function createProcessMetrics(app: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, labels: { app } });
  return registry;
}
