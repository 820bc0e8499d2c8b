/**
 * /metrics: the prom-client metrics of every live instance (from their Redis heartbeats),
 * aggregated with AggregatorRegistry.aggregate, plus the dashboard's own registry.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { z } from 'zod';
import type { Heartbeat } from '@settlement/runtime';

const AGGREGATORS = new Set(['sum', 'first', 'min', 'max', 'average', 'omit']);

/** The shape getMetricsAsJSON() produces; anything else in a heartbeat is skipped. */
const metricSchema = z.object({
  name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/),
  help: z.string(),
  type: z.enum(['counter', 'gauge', 'histogram', 'summary']),
  aggregator: z.string().optional(),
  values: z.array(
    z.object({
      // JSON has no NaN: a heartbeat's NaN (e.g. event-loop mean before any sample) arrives as
      // null, and is read back as NaN rather than dropping the whole metric.
      value: z.number().nullable().transform((v) => v ?? Number.NaN),
      labels: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
      metricName: z.string().optional(),
    }),
  ),
});

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/** Valid metrics of one heartbeat; an unknown aggregator falls back to summation. */
export function heartbeatMetrics(heartbeat: Pick<Heartbeat, 'metrics'>): MetricJson[] {
  const out: MetricJson[] = [];
  for (const raw of heartbeat.metrics) {
    const result = metricSchema.safeParse(raw);
    if (!result.success) continue;
    const metric = result.data;
    const aggregator = metric.aggregator !== undefined && AGGREGATORS.has(metric.aggregator) ? metric.aggregator : 'sum';
    out.push({ ...metric, aggregator } as unknown as MetricJson);
  }
  return out;
}

/**
 * Aggregates the given metric sets. A metric name registered with different types by two apps
 * cannot be merged; the first type seen wins and the other sets' copies are dropped.
 */
export function aggregateMetrics(sets: readonly MetricJson[][]): Registry {
  const typeByName = new Map<string, unknown>();
  const consistent = sets.map((set) =>
    set.filter((metric) => {
      const known = typeByName.get(metric.name);
      if (known === undefined) typeByName.set(metric.name, metric.type);
      return known === undefined || known === metric.type;
    }),
  );
  return AggregatorRegistry.aggregate(consistent);
}

export interface DashboardMetrics {
  readonly registry: Registry;
  /** The dashboard process's Node.js metrics (createProcessMetrics('dashboard')). */
  readonly processMetrics: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly instances: Gauge<'app'>;
  readonly queueJobs: Gauge<'queue' | 'state'>;
}

/** The dashboard's own registry (HTTP requests, live instances per app, queue depths) next to its process metrics. */
export function createDashboardMetrics(processMetrics: Registry): DashboardMetrics {
  const registry = new Registry();
  const httpRequests = new Counter({
    name: 'settlement_dashboard_http_requests_total',
    help: 'HTTP requests served by the dashboard, by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const instances = new Gauge({
    name: 'settlement_instances',
    help: 'Live instances per app, from their Redis heartbeats',
    labelNames: ['app'] as const,
    registers: [registry],
  });
  const queueJobs = new Gauge({
    name: 'settlement_queue_jobs',
    help: 'Jobs per BullMQ queue and state, read when /metrics is scraped',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
  });
  return { registry, processMetrics, httpRequests, instances, queueJobs };
}
