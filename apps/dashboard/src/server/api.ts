/**
 * The JSON API under /v1. Path parameters and bodies are validated with zod; a bad one gets a
 * 400 whose message names the field. Amounts and ids are decimal strings (JSON has no 64-bit
 * integers).
 */
import express, { Router } from 'express';
import { z } from 'zod';
import type { Ops } from '../ops/context.js';
import { NotFoundError } from '../ops/not-found-error.js';
import { jobIdSchema, parseInput, symbolSchema, tradeIdSchema, userIdSchema } from '../ops/params.js';
import { enqueueReconciliation, getReconciliation } from '../ops/reconciliations.js';
import { shardStatuses } from '../ops/shards.js';
import { balanceViews, tradeView } from '../ops/views.js';

/** Largest JSON body accepted (a users-mode reconcile of 100 000 ids fits). */
const BODY_LIMIT = '4mb';

export function createApiRouter(ops: Ops): Router {
  const router = Router();
  router.use(express.json({ limit: BODY_LIMIT }));
  const userParams = z.object({ userId: userIdSchema });
  const tradeParams = z.object({ symbol: symbolSchema(ops.catalog), tradeId: tradeIdSchema });
  const jobParams = z.object({ id: jobIdSchema });

  router.get('/users/:userId/balances', async (req, res) => {
    const { userId } = parseInput(userParams, req.params, 'request');
    const balances = await ops.balances.getUserBalances(userId);
    res.json({ userId, balances: balanceViews(balances, ops.catalog) });
  });

  router.get('/trades/:symbol/:tradeId', async (req, res) => {
    const { symbol, tradeId } = parseInput(tradeParams, req.params, 'request');
    const trade = await ops.trades.getTrade(symbol, tradeId);
    if (trade === undefined) throw new NotFoundError(`trade ${tradeId} of ${symbol} not found`);
    res.json({ trade: tradeView(trade, ops.catalog) });
  });

  router.get('/shards', async (_req, res) => {
    const shards = await shardStatuses({
      redis: ops.redis,
      prefix: ops.config.redis.prefix,
      queues: ops.settlementQueues,
      readWatermarks: () => ops.watermarks.list(),
    });
    res.json({ shards });
  });

  router.post('/reconciliations', async (req, res) => {
    const enqueued = await enqueueReconciliation(ops.reconcileQueue, req.body ?? {}, 'api');
    res.status(202).location(`/v1/reconciliations/${enqueued.id}`).json({ id: enqueued.id, data: enqueued.payload });
  });

  router.get('/reconciliations/:id', async (req, res) => {
    const { id } = parseInput(jobParams, req.params, 'request');
    res.json(await getReconciliation(ops.reconcileQueue, ops.reconciliations, id));
  });

  return router;
}
