/**
 * `settle export trades|balances`: streams settled trades of a symbol, or every balance row, to
 * CSV, JSON lines or Parquet, with a progress bar on stderr; resumable (see ops/exports.ts).
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { ExportReader } from '@settlement/scylla';
import { balanceExportSchema, exportBalances, exportTrades, parseTradeExport, type ExportProgress, type ExportResult } from '../ops/exports.js';
import { parseInput } from '../ops/params.js';
import type { CommandContext } from './command-context.js';
import { ProgressBar } from './progress-bar.js';

interface CommonOptions {
  format?: string;
  out?: string;
  restart?: boolean;
  pageRows: number;
  pagesMax?: number;
}

function count(flag: string, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${flag} must be an integer from 1 to ${max}, got "${value}"`);
    return Number(value);
  };
}

export function registerExportCommands(program: Command, ctx: CommandContext): void {
  const exportCommand = program.command('export').description('stream settled trades or balances to a file (csv, jsonl, parquet); resumable');
  const common = (command: Command): Command =>
    command
      .option('--format <format>', 'csv, jsonl or parquet')
      .option('--out <file>', 'file to write (beside it: FILE.partial and FILE.export-state.json while under way)')
      .option('--restart', 'discard an unfinished export of FILE instead of resuming it')
      .option('--page-rows <n>', 'rows read per page (and per Parquet row group)', count('--page-rows', 100_000), 5_000)
      .option('--pages-max <n>', 'stop (resumable) after this many pages', count('--pages-max', 1_000_000_000));

  common(
    exportCommand
      .command('trades')
      .description('settled trades of a symbol, every column, u64 ids and amounts as exact decimal strings; --from/--to filter on settled_at')
      .option('--symbol <symbol>', 'symbol, e.g. btc_usdt')
      .option('--from <time>', 'settled at or after (ms since the epoch or ISO-8601)')
      .option('--to <time>', 'settled at or before (ms since the epoch or ISO-8601)'),
  ).action(async (options: CommonOptions & { symbol?: string; from?: string; to?: string }) => {
    const o = ctx.getOps();
    const args = parseTradeExport(o.catalog, defined({ symbol: options.symbol, from: options.from, to: options.to, format: options.format, out: options.out }));
    const reader = new ExportReader(o.scylla, o.config.scylladb.keyspace, [...o.catalog.markets.keys()]);
    const result = await exportTrades(reader, args, runOptions(ctx, args.format, args.out, options));
    report(ctx, 'trades', result);
  });

  common(exportCommand.command('balances').description("every balance row (user, asset, shard) with its version and the shard's watermark at the start")).action(
    async (options: CommonOptions) => {
      const args = parseInput(balanceExportSchema, defined({ format: options.format, out: options.out }), 'arguments');
      const o = ctx.getOps();
      const reader = new ExportReader(o.scylla, o.config.scylladb.keyspace, [...o.catalog.markets.keys()]);
      const watermarks = async () => new Map((await o.watermarks.list()).map((w) => [w.shard, w.lastSeq]));
      const result = await exportBalances(reader, o.catalog, watermarks, runOptions(ctx, args.format, args.out, options));
      report(ctx, 'balance rows', result);
    },
  );
}

function defined(values: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined));
}

function runOptions(ctx: CommandContext, format: z.infer<typeof balanceExportSchema>['format'], out: string, options: CommonOptions) {
  const bar = new ProgressBar(ctx.io.stderr);
  return {
    format,
    out: path.resolve(ctx.io.cwd, out),
    restart: options.restart,
    pageRows: options.pageRows,
    pagesMax: options.pagesMax,
    onProgress: (p: ExportProgress) => bar.update({ percent: p.percent, label: `${p.rows} rows written, ${p.rowsRead} read` }),
  };
}

function report(ctx: CommandContext, what: string, result: ExportResult): void {
  if (ctx.io.stderr.isTTY === true) ctx.io.stderr.write('\n');
  if (ctx.json()) return ctx.printJson(result);
  const how = result.resumed ? ' (resumed)' : '';
  ctx.print(result.complete ? `exported ${result.rows} ${what} to ${result.file}${how}` : `stopped after ${result.rows} ${what}${how}; run the same command again to go on`);
}
