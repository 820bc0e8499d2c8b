/**
 * History under /v1: GET /v1/users/:userId/trades (symbol, from, to, limit, cursor) and
 * GET /v1/users/:userId/ledger (limit, cursor). Newest first; `nextCursor` is null after the last
 * page. A bad parameter gets a 400 naming it.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { Ops } from '../ops/context.js';
import { historyReaderOf, userLedgerPage, userTradesPage } from '../ops/history.js';
import { parseInput, userIdSchema } from '../ops/params.js';

export function createHistoryRouter(ops: Ops): Router {
  const router = Router();
  const userParams = z.object({ userId: userIdSchema });

  router.get('/users/:userId/trades', async (req, res) => {
    const { userId } = parseInput(userParams, req.params, 'request');
    const page = await userTradesPage(historyReaderOf(ops), ops.catalog, userId, req.query, 'request');
    res.json({ userId, trades: page.items, nextCursor: page.nextCursor });
  });

  router.get('/users/:userId/ledger', async (req, res) => {
    const { userId } = parseInput(userParams, req.params, 'request');
    const page = await userLedgerPage(historyReaderOf(ops), ops.catalog, userId, req.query, 'request');
    res.json({ userId, events: page.items, nextCursor: page.nextCursor });
  });

  return router;
}
