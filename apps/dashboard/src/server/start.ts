/**
 * Starts the dashboard: connections → HTTP server on dashboard.host:port. Registers the
 * cleanup steps on the app's Shutdown (server first, then connections).
 */
import type { AddressInfo } from 'node:net';
import type { AppContext } from '@settlement/runtime';
import { openOps } from '../ops/context.js';
import { OverviewSampler, recordSamples } from '../ops/overview-samples.js';
import { shardStatuses } from '../ops/shards.js';
import { BOARD_PATH, createDashboardApp } from './app.js';
import { createDashboardMetrics } from './metrics.js';

export async function startDashboard({ config, logger, shutdown, processMetrics }: AppContext): Promise<void> {
  const ops = openOps(config);
  shutdown.add('connections', () => ops.close());
  ops.redis.on('error', (error: Error) => logger.warn({ err: error }, 'redis connection error'));
  // The overview's last-hour charts: a sample of every shard per interval, kept in Redis.
  const sampler = new OverviewSampler(
    async () => recordSamples(ops.redis, config.redis.prefix, await shardStatuses({ redis: ops.redis, prefix: config.redis.prefix, queues: ops.settlementQueues, readWatermarks: () => ops.watermarks.list() })),
    config.dashboard.overview_sample_interval_ms,
    logger,
  );
  sampler.start();
  shutdown.add('overview sampler', () => sampler.close());
  const app = createDashboardApp({ ops, logger, metrics: createDashboardMetrics(processMetrics) });
  const { host, port } = config.dashboard;
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const listening = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(listening)));
  });
  shutdown.add('http server', async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // bull-board polls with keep-alive connections; without this, close waits for them.
    server.closeAllConnections();
    await closed;
  });
  const address = server.address() as AddressInfo;
  if (config.dashboard.token === undefined) logger.warn({ host }, 'dashboard has no token: open to anyone who can reach this (loopback) address');
  logger.info(
    { host: address.address, port: address.port, board: BOARD_PATH, auth: config.dashboard.token === undefined ? 'none' : 'basic+bearer' },
    'dashboard listening',
  );
}
