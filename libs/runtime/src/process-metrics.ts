import { hostname } from 'node:os';
import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Node.js metrics of this process (CPU, resident memory, heap, event-loop delay, GC pauses,
 * handles), labelled with its app and its instance (host:pid, as the dashboard names settler
 * processes): created once per process by runApp and published by the process's heartbeat next
 * to the app's own metrics. The dashboard's /metrics keeps one series per process, so a settler
 * that falls behind shows whether its own event loop or CPU is the cause; sum by `app` for the
 * fleet.
 */
export function createProcessMetrics(app: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, labels: { app, instance: `${hostname()}:${process.pid}` } });
  return registry;
}
