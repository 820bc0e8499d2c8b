/**
 * The dashboard's HTTP server: /healthz and /readyz (open, for orchestrators), then behind
 * authentication bull-board at /queues, the JSON API at /v1 and Prometheus /metrics.
 */
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Logger } from '@settlement/runtime';
import { bigintReplacer } from '../ops/amounts.js';
import type { Ops } from '../ops/context.js';
import { readHeartbeats } from '../ops/heartbeats.js';
import { InputError } from '../ops/input-error.js';
import { NotFoundError } from '../ops/not-found-error.js';
import { createApiRouter } from './api.js';
import { authenticate } from './auth.js';
import { createBoardRouter } from './board.js';
import { createOverviewRouter } from './overview-page.js';
import { createHistoryRouter } from './history-api.js';
import { checkReadiness } from './health.js';
import { aggregateMetrics, heartbeatMetrics, type DashboardMetrics } from './metrics.js';

export const BOARD_PATH = '/queues';

export interface DashboardAppOptions {
  readonly ops: Ops;
  readonly logger: Logger;
  readonly metrics: DashboardMetrics;
  /** How long /readyz waits for Redis and Cassandra, ms. Default 2 000. */
  readonly readinessTimeoutMs?: number;
}

export function createDashboardApp(options: DashboardAppOptions): Express {
  const { ops, logger, metrics } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('json replacer', bigintReplacer);
  app.use(countRequests(metrics));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const readiness = await checkReadiness(ops, options.readinessTimeoutMs ?? 2_000);
    res.status(readiness.ready ? 200 : 503).json(readiness);
  });

  app.use(authenticate({ user: ops.config.dashboard.user, token: ops.config.dashboard.token }));
  app.get('/', (_req, res) => res.redirect(BOARD_PATH));
  app.use(
    BOARD_PATH,
    createBoardRouter({
      basePath: BOARD_PATH,
      settlementQueues: ops.settlementQueues,
      reconcileQueue: ops.reconcileQueue,
      sampleSize: ops.config.reconciliation.sample_size,
    }),
  );
  app.use('/v1', createApiRouter(ops));
  app.use(createOverviewRouter(ops, { board: BOARD_PATH }));
  app.use('/v1', createHistoryRouter(ops));
  app.get('/metrics', async (_req, res) => {
    const { heartbeats, invalid } = await readHeartbeats(ops.redis, ops.config.redis.prefix);
    if (invalid > 0) logger.warn({ invalid }, 'skipped heartbeats that are not valid JSON heartbeats');
    metrics.instances.reset();
    for (const beat of heartbeats) metrics.instances.inc({ app: beat.app });
    await recordQueueDepths(ops, metrics);
    const registry = aggregateMetrics([
      ...heartbeats.map(heartbeatMetrics),
      await metrics.registry.getMetricsAsJSON(),
      await metrics.processMetrics.getMetricsAsJSON(),
    ]);
    res.type(registry.contentType).send(await registry.metrics());
  });

  app.use((req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.path}` } });
  });
  app.use(errorHandler(logger));
  return app;
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'paused', 'failed', 'completed'] as const;

/** Queue depth per state, read at scrape time (no app publishes it: BullMQ knows it). */
async function recordQueueDepths(ops: Ops, metrics: DashboardMetrics): Promise<void> {
  const queues = [...ops.settlementQueues.map((q) => q.queue), ops.reconcileQueue];
  const counts = await Promise.all(queues.map((q) => q.getJobCounts(...QUEUE_STATES)));
  metrics.queueJobs.reset();
  queues.forEach((queue, i) => {
    for (const state of QUEUE_STATES) metrics.queueJobs.set({ queue: queue.name, state }, counts[i]![state] ?? 0);
  });
}

function countRequests(metrics: DashboardMetrics): RequestHandler {
  return (req, res, next) => {
    res.on('finish', () => {
      // The matched route pattern, never the raw path, so ids do not explode the label set.
      const pattern = (req.route as { path?: unknown } | undefined)?.path;
      const route =
        typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : req.originalUrl.startsWith(BOARD_PATH) ? `${BOARD_PATH}/*` : 'other';
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (error instanceof InputError) {
      res.status(400).json({ error: { code: error.code, field: error.field, message: error.message } });
      return;
    }
    if (error instanceof NotFoundError) {
      res.status(404).json({ error: { code: error.code, message: error.message } });
      return;
    }
    // body-parser: malformed JSON or a body over the limit.
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: { code: 'INVALID_BODY', field: '(body)', message: `Invalid request body: ${(error as Error).message}` } });
      return;
    }
    logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
    res.status(500).json({ error: { code: 'INTERNAL', message: 'internal error; see the dashboard log' } });
  };
}
