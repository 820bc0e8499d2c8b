import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { aggregateMetrics, heartbeatMetrics } from './metrics.js';

async function registryWith(shardValues: Record<string, number>, lastSeq: number): Promise<unknown[]> {
  const registry = new Registry();
  const jobs = new Counter({ name: 'jobs_total', help: 'jobs', labelNames: ['shard'], registers: [registry] });
  for (const [shard, n] of Object.entries(shardValues)) jobs.inc({ shard }, n);
  new Gauge({ name: 'last_seq', help: 'seq', aggregator: 'max', registers: [registry] }).set(lastSeq);
  return registry.getMetricsAsJSON();
}

describe('aggregateMetrics', () => {
  it('sums counters per label set across instances and honours each metric aggregator', async () => {
    const a = heartbeatMetrics({ metrics: await registryWith({ btc_usdt: 3, funding: 1 }, 10) });
    const b = heartbeatMetrics({ metrics: await registryWith({ btc_usdt: 4 }, 12) });
    const text = await aggregateMetrics([a, b]).metrics();
    expect(text).toContain('jobs_total{shard="btc_usdt"} 7');
    expect(text).toContain('jobs_total{shard="funding"} 1');
    expect(text).toContain('last_seq 12');
  });

  it('skips malformed metrics from a heartbeat instead of failing the scrape', () => {
    const metrics = heartbeatMetrics({
      metrics: [
        { name: 'bad name', help: '', type: 'counter', values: [] },
        { name: 'ok_total', help: 'fine', type: 'counter', values: [{ value: 1, labels: {} }], aggregator: 'unknown-aggregator' },
        'not an object',
      ],
    });
    expect(metrics.map((m) => [m.name, m.aggregator])).toEqual([['ok_total', 'sum']]);
  });

  it('keeps a metric whose value is NaN in the process (null in the heartbeat JSON)', async () => {
    const registry = new Registry();
    new Gauge({ name: 'lag_mean', help: 'no sample yet', registers: [registry] }).set(Number.NaN);
    new Gauge({ name: 'ok', help: 'fine', registers: [registry] }).set(3);
    const published = JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as unknown[];
    const text = await aggregateMetrics([heartbeatMetrics({ metrics: published })]).metrics();
    expect(text).toMatch(/^lag_mean nan$/im); // prom-client writes "Nan"; Prometheus reads any case
    expect(text).toContain('ok 3');
  });

  it('keeps the first type of a name two apps registered differently', async () => {
    const counter = heartbeatMetrics({ metrics: [{ name: 'x', help: 'c', type: 'counter', values: [{ value: 2, labels: {} }], aggregator: 'sum' }] });
    const gauge = heartbeatMetrics({ metrics: [{ name: 'x', help: 'g', type: 'gauge', values: [{ value: 5, labels: {} }], aggregator: 'sum' }] });
    const text = await aggregateMetrics([counter, gauge]).metrics();
    expect(text).toContain('# TYPE x counter');
    expect(text).toContain('x 2');
  });
});
