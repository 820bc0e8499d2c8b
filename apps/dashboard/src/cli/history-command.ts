/** `settle history <user>`: a user's trades (or, with --ledger, funding events), newest first. */
import type { Command } from 'commander';
import { z } from 'zod';
import { renderTable } from '@settlement/runtime';
import { HISTORY_LIMIT_MAX, historyReaderOf, userLedgerPage, userTradesPage } from '../ops/history.js';
import { InputError } from '../ops/input-error.js';
import { parseInput, userIdSchema } from '../ops/params.js';
import type { CommandContext } from './command-context.js';

interface HistoryOptions {
  symbol?: string;
  ledger?: boolean;
  limit?: string;
  from?: string;
  to?: string;
  cursor?: string;
}

export function registerHistoryCommand(program: Command, ctx: CommandContext): void {
  program
    .command('history')
    .description("a user's settled trades (one row per side they took), or with --ledger their deposits, withdrawals, locks and unlocks; newest first")
    .argument('<user>', 'user id')
    .option('--symbol <symbol>', 'only trades of this symbol')
    .option('--ledger', 'funding events instead of trades')
    .option('--from <time>', 'trades settled at or after (ms since the epoch or ISO-8601)')
    .option('--to <time>', 'trades settled at or before (ms since the epoch or ISO-8601)')
    .option('--limit <n>', `rows per page, 1-${HISTORY_LIMIT_MAX} (default 100)`)
    .option('--cursor <cursor>', 'continue after a previous page (printed at its end)')
    .action(async (user: string, options: HistoryOptions) => {
      const { userId } = parseInput(z.object({ userId: userIdSchema }), { userId: user }, 'arguments');
      const o = ctx.getOps();
      const reader = historyReaderOf(o);
      const common = { limit: options.limit, cursor: options.cursor };
      if (options.ledger === true) {
        for (const flag of ['symbol', 'from', 'to'] as const) {
          if (options[flag] !== undefined) throw new InputError(`Invalid arguments: ${flag}: applies to trades, not to --ledger`, flag);
        }
        const page = await userLedgerPage(reader, o.catalog, userId, drop(common), 'arguments');
        if (ctx.json()) return ctx.printJson({ userId, events: page.items, nextCursor: page.nextCursor });
        if (page.items.length === 0) ctx.print(`user ${userId} has no funding events${options.cursor === undefined ? '' : ' after this cursor'}`);
        else
          ctx.print(
            renderTable(
              ['seq', 'time', 'type', 'asset', 'amount', 'minor units', 'sequence id', 'related id'],
              page.items.map((e) => [e.seq.toString(), e.createdAtIso ?? e.createdAt.toString(), e.eventType, e.asset, e.display.amount, e.amount.toString(), e.sequenceId.toString(), e.relatedId.toString()]),
            ),
          );
        return more(ctx, page.nextCursor, user, options);
      }
      const page = await userTradesPage(reader, o.catalog, userId, drop({ ...common, symbol: options.symbol, from: options.from, to: options.to }), 'arguments');
      if (ctx.json()) return ctx.printJson({ userId, trades: page.items, nextCursor: page.nextCursor });
      if (page.items.length === 0) ctx.print(`user ${userId} has no trades${options.cursor === undefined ? '' : ' after this cursor'} in this selection`);
      else
        ctx.print(
          renderTable(
            ['symbol', 'seq', 'side', 'trade id', 'time', 'price', 'quantity', 'quote amount', 'fee (buyer/seller)'],
            page.items.map((t) => [t.symbol, t.seq.toString(), t.side, t.tradeId.toString(), t.settledAtIso ?? t.settledAt.toString(), t.display.price, t.display.quantity, t.display.quoteAmount, `${t.buyerFee}/${t.sellerFee}`]),
          ),
        );
      return more(ctx, page.nextCursor, user, options);
    });
}

/** Keeps only the options given, so an absent one is not validated as a value. */
function drop(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined));
}

function more(ctx: CommandContext, cursor: string | null, user: string, options: HistoryOptions): void {
  if (cursor === null) return;
  const flags = [
    options.ledger === true ? '--ledger' : '',
    options.symbol !== undefined ? `--symbol ${options.symbol}` : '',
    options.from !== undefined ? `--from ${options.from}` : '',
    options.to !== undefined ? `--to ${options.to}` : '',
    options.limit !== undefined ? `--limit ${options.limit}` : '',
  ].filter((f) => f.length > 0);
  ctx.print(`more: settle history ${user} ${[...flags, `--cursor ${cursor}`].join(' ')}`);
}
