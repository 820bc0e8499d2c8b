/**
 * `settle migrate-history`: copies the pre-bucket history tables into the bucketed ones
 * (libs/scylla history-backfill.ts) with a progress bar on stderr; resumable, safe to re-run and
 * to run while settling. When it ends, readers switch to the bucketed tables and settlers stop
 * writing the old ones within a minute.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { HistoryBackfill, type HistoryBackfillResult } from '@settlement/scylla';
import type { CommandContext } from './command-context.js';
import { ProgressBar } from './progress-bar.js';

function count(flag: string, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${flag} must be an integer from 1 to ${max}, got "${value}"`);
    return Number(value);
  };
}

export function registerMigrateHistoryCommand(program: Command, ctx: CommandContext): void {
  program
    .command('migrate-history')
    .description('copy trades_by_user and ledger_events_by_user into the bucketed history tables; resumable, safe while settling')
    .option('--page-rows <n>', 'rows read and copied per page (the position is saved after each)', count('--page-rows', 100_000), 1_000)
    .option('--pages-max <n>', 'stop (resumable) after this many pages', count('--pages-max', 1_000_000_000))
    .option('--restart', 'start over instead of resuming a run that stopped (refused once done)')
    .action(async (options: { pageRows: number; pagesMax?: number; restart?: boolean }) => {
      const o = ctx.getOps();
      const bar = new ProgressBar(ctx.io.stderr);
      const result = await new HistoryBackfill(o.scylla, o.config.scylladb.keyspace).run({
        pageRows: options.pageRows,
        pagesMax: options.pagesMax,
        restart: options.restart,
        onProgress: (p) => bar.update({ percent: p.percent, label: `${p.phase}, ${p.rowsCopied} rows copied` }),
      });
      bar.finish();
      report(ctx, result);
    });
}

function report(ctx: CommandContext, result: HistoryBackfillResult): void {
  if (ctx.json()) return ctx.printJson(result);
  if (result.alreadyDone) return ctx.print(`history migration already done (${result.rowsCopied} rows copied); nothing to do`);
  const how = result.resumed ? ' (resumed)' : '';
  ctx.print(
    result.complete
      ? `history migration done${how}: ${result.rowsCopied} rows copied into buckets of ${result.bucketSeqs} sequences; readers now use the bucketed tables, settlers stop writing the old ones within a minute`
      : `stopped after ${result.pages} page(s), ${result.rowsCopied} rows copied so far${how}; run the same command again to go on`,
  );
}
