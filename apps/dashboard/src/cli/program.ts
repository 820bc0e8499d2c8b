/**
 * `settle`: the operator's command line. It reads the same config as the services (--config,
 * else SETTLEMENT_CONFIG, else config/settlement.yaml) and talks to Redis and Cassandra
 * directly, with the same validation and views as the dashboard's JSON API.
 */
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig, type SettlementConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig, type StoredDeadLetter } from '@settlement/scylla';
import { renderTable } from '@settlement/runtime';
import { bigintReplacer } from '../ops/amounts.js';
import { openOps, type Ops } from '../ops/context.js';
import { deadLetterShards, ingestorEndpoint, listDeadLetters, replayDeadLetters } from '../ops/dead-letters.js';
import { InputError } from '../ops/input-error.js';
import { FINDINGS_LISTED_DEFAULT, listFindingViews } from '../ops/findings.js';
import { NotFoundError } from '../ops/not-found-error.js';
import { parseInput, shardSchema, symbolSchema, tradeIdSchema, userIdSchema } from '../ops/params.js';
import { enqueueReconciliation, getReconciliation, isFinished, type ReconciliationStatus } from '../ops/reconciliations.js';
import { haltedWarnings, shardStatuses } from '../ops/shards.js';
import { balanceViews, tradeView } from '../ops/views.js';
import { z } from 'zod';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';
import { registerExportCommands } from './export-command.js';
import { registerHistoryCommand } from './history-command.js';
import { registerMigrateHistoryCommand } from './migrate-history-command.js';
import { renderFindings } from './findings-output.js';
import { ProgressBar, progressPercent } from './progress-bar.js';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** How often `reconcile --wait` polls the job, ms. */
const WAIT_POLL_MS = 500;

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

function positiveInteger(what: string, max = 1_000_000) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new InvalidArgumentError(`${what} must be an integer from 1 to ${max}, got "${value}"`);
    }
    return Number(value);
  };
}

export type SettleProgram = Command & { closeOps(): Promise<void>; redisTarget(): string | undefined };

export function buildProgram(io: CliIo): SettleProgram {
  let ops: Ops | undefined;
  let config: Readonly<SettlementConfig> | undefined;
  const program = new Command('settle');

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const getConfig = (): Readonly<SettlementConfig> => {
    config ??= loadConfig({ file: globals().config, env: io.env, cwd: io.cwd });
    return config;
  };
  const getOps = (): Ops => {
    // The CLI fails fast: a few connection attempts, then the command reports the outage.
    ops ??= openOps(getConfig(), { redis: { maxRetriesPerRequest: 1, connectTimeout: 3_000, retryStrategy: (attempt) => (attempt > 3 ? null : 250) } });
    return ops;
  };
  const print = (text: string): void => {
    io.stdout.write(`${text}\n`);
  };
  const printJson = (value: unknown) => print(JSON.stringify(value, bigintReplacer, 2));

  program
    .description('Operate the settlement service: balances, trades, shards, reconciliation, dead letters')
    .option('-c, --config <file>', 'config file (default: $SETTLEMENT_CONFIG or config/settlement.yaml)')
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError('(run settle --help for usage)')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();

  program
    .command('balances')
    .description("a user's balances per asset (sum of the shards' rows)")
    .argument('<user>', 'user id')
    .action(async (user: string) => {
      const { userId } = parseInput(z.object({ userId: userIdSchema }), { userId: user }, 'arguments');
      const o = getOps();
      const balances = balanceViews(await o.balances.getUserBalances(userId), o.catalog);
      if (globals().json) return printJson({ userId, balances });
      if (balances.length === 0) return print(`user ${userId} has no balances`);
      print(`user ${userId}`);
      print(
        renderTable(
          ['asset', 'available', 'frozen', 'total', 'minor units (available/frozen)'],
          balances.map((b) => [b.asset, b.display.available, b.display.frozen, b.display.total, `${b.available}/${b.frozen}`]),
        ),
      );
    });

  program
    .command('trade')
    .description('one settled trade')
    .argument('<symbol>', 'symbol, e.g. btc_usdt')
    .argument('<id>', 'trade id')
    .action(async (symbol: string, id: string) => {
      const o = getOps();
      const args = parseInput(z.object({ symbol: symbolSchema(o.catalog), tradeId: tradeIdSchema }), { symbol, tradeId: id }, 'arguments');
      const trade = await o.trades.getTrade(args.symbol, args.tradeId);
      if (trade === undefined) throw new NotFoundError(`trade ${args.tradeId} of ${args.symbol} not found`);
      const view = tradeView(trade, o.catalog);
      if (globals().json) return printJson({ trade: view });
      const { display, ...fields } = view;
      const rows = Object.entries(fields).map(([k, v]) => [k, String(v)]);
      rows.push(['price (display)', display.price], ['quantity (display)', display.quantity], ['quote amount (display)', display.quoteAmount]);
      print(renderTable(['field', 'value'], rows));
    });

  program
    .command('shards')
    .description('per shard: applied and enqueued sequence, lag, queue depth, workers, the settler settling it')
    .action(async () => {
      const o = getOps();
      const shards = await shardStatuses({ redis: o.redis, prefix: o.config.redis.prefix, queues: o.settlementQueues, readWatermarks: () => o.watermarks.list() });
      if (globals().json) return printJson({ shards });
      print(
        renderTable(
          ['shard', 'applied seq', 'enqueued seq', 'lag', 'depth', 'active', 'failed', 'completed', 'workers', 'settled by', 'last batch', 'halted'],
          shards.map((s) => [
            s.shard,
            s.appliedSeq?.toString() ?? '-',
            s.enqueuedSeq?.toString() ?? '-',
            s.lag.toString(),
            String(s.depth),
            String(s.jobs.active),
            String(s.jobs.failed),
            String(s.jobs.completed),
            s.workers === null ? '-' : String(s.workers),
            s.settledBy.length === 0 ? '-' : s.settledBy.join(', '),
            s.updatedAt?.toISOString() ?? '-',
            s.halted === null ? '-' : `HALTED ${s.halted.afterSeq}..${s.halted.throughSeq}`,
          ]),
        ),
      );
      for (const line of haltedWarnings(shards)) print(line);
    });

  program
    .command('reconcile')
    .description('enqueue a reconciliation (default: a sample of reconciliation.sample_size users)')
    .addOption(new Option('--users <ids>', 'comma-separated user ids').conflicts(['sample', 'full']))
    .addOption(new Option('--sample [size]', 'random users (default: config sample_size)').argParser(positiveInteger('--sample')).conflicts(['full']))
    .option('--full', 'every user, plus conservation and sequence gaps')
    .option('--fix', "enqueue corrections for the mismatches found (applied by each shard's settler)")
    .option('--wait', 'wait for the run to finish, with a progress bar')
    .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInteger('--timeout', 7 * 24 * 3600), 3600)
    .action(async (options: { users?: string; sample?: number | true; full?: boolean; fix?: boolean; wait?: boolean; timeout: number }) => {
      const fix = options.fix === true;
      const body =
        options.users !== undefined
          ? { mode: 'users', userIds: options.users.split(',').map((u) => u.trim()).filter((u) => u.length > 0), fix }
          : options.full === true
            ? { mode: 'full', fix }
            : { mode: 'sample', size: typeof options.sample === 'number' ? options.sample : getConfig().reconciliation.sample_size, fix };
      const o = getOps();
      const { id, payload } = await enqueueReconciliation(o.reconcileQueue, body, 'cli');
      if (!options.wait) {
        if (globals().json) return printJson({ id, data: payload });
        return print(`enqueued reconciliation ${id} (${describe(payload)}); follow it with: settle reconcile-status ${id}`);
      }
      io.stderr.write(`enqueued reconciliation ${id} (${describe(payload)})\n`);
      const status = await waitForReconciliation(o, id, options.timeout * 1000, new ProgressBar(io.stderr));
      if (globals().json) printJson(status);
      else print(summarize(status));
      if (status.state === 'failed' || status.record?.status === 'failed') {
        throw new CliError(`reconciliation ${id} failed: ${status.failedReason ?? status.record?.summary ?? 'no reason recorded'}`, ExitCode.RECONCILE_FAILED);
      }
      const errors = status.record?.errors ?? 0;
      if (errors > 0) throw new CliError(`reconciliation ${id} found ${errors} balance error(s)`, ExitCode.RECONCILE_ERRORS_FOUND);
    });

  program
    .command('reconcile-status')
    .description('state, progress and result of a reconciliation, and the errors it found (kind, user, asset, shard, expected vs stored)')
    .argument('<id>', 'reconciliation (job) id')
    .option('--limit <n>', 'list at most this many findings', positiveInteger('--limit', 100_000), FINDINGS_LISTED_DEFAULT)
    .action(async (id: string, options: { limit: number }) => {
      const { jobId } = parseInput(z.object({ jobId: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'must be a job id') }), { jobId: id }, 'arguments');
      const o = getOps();
      const status = await getReconciliation(o.reconcileQueue, o.reconciliations, jobId);
      const found = await listFindingViews(o.reconciliations, o.catalog, jobId, options.limit);
      if (globals().json) return printJson({ ...status, findings: found.findings, findingsTruncated: found.truncated });
      print(summarize(status));
      print(renderFindings(found, options.limit));
    });

  const deadLetters = program.command('dead-letters').description('messages that could not be settled, kept with their reason');
  deadLetters
    .command('list')
    .description('newest first, every shard unless --shard')
    .option('--shard <shard>', 'only this shard (or "unrouted")')
    .option('--limit <n>', 'at most this many', positiveInteger('--limit', 100_000), 50)
    .action(async (options: { shard?: string; limit: number }) => {
      const o = getOps();
      const letters = await listDeadLetters(o.deadLetters, selectShards(o, options.shard), options.limit);
      if (globals().json) return printJson({ deadLetters: letters });
      if (letters.length === 0) return print('no dead letters');
      print(
        renderTable(
          ['id', 'created', 'shard', 'source', 'seq', 'field', 'reason'],
          letters.map((l) => [l.id, l.createdAt?.toISOString() ?? '-', l.shard, l.source, l.seq?.toString() ?? '-', l.field ?? '-', truncate(l.reason, 80)]),
        ),
      );
    });
  deadLetters
    .command('replay')
    .description("send dead letters back to the ingestor (re-validated, sequenced and de-duplicated there); the originals stay listed")
    .option('--shard <shard>', 'dead letters of this shard (or "unrouted")')
    .option('--id <ids>', 'comma-separated dead-letter ids (from list); default: all of the shard')
    .option('--limit <n>', 'at most this many', positiveInteger('--limit', 100_000), 1000)
    .option('--endpoint <tcp>', "the ingestor's ZeroMQ endpoint (default from config zmq)")
    .option('--dry-run', 'only show what would be sent')
    .action(async (options: { shard?: string; id?: string; limit: number; endpoint?: string; dryRun?: boolean }) => {
      if (options.shard === undefined && options.id === undefined) {
        throw new InputError('Invalid arguments: --shard or --id is required (replaying every dead letter at once is not offered)', 'shard');
      }
      const o = getOps();
      const ids = options.id?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      let letters: StoredDeadLetter[] = await listDeadLetters(o.deadLetters, selectShards(o, options.shard), ids === undefined ? options.limit : 100_000);
      if (ids !== undefined) {
        const missing = ids.filter((id) => !letters.some((l) => l.id === id));
        if (missing.length > 0) throw new NotFoundError(`dead letter(s) not found: ${missing.join(', ')}`);
        letters = letters.filter((l) => ids.includes(l.id));
      }
      // Oldest first, the order they were received in.
      letters.reverse();
      const endpoint = options.endpoint ?? ingestorEndpoint(o.config.zmq);
      if (options.dryRun === true) {
        if (globals().json) return printJson({ endpoint, wouldSend: letters.map((l) => l.id) });
        return print(`would send ${letters.length} dead letter(s) to ${endpoint}: ${letters.map((l) => l.id).join(', ') || '(none)'}`);
      }
      const sent = await replayDeadLetters(letters, { endpoint });
      if (globals().json) return printJson({ endpoint, sent, ids: letters.map((l) => l.id) });
      print(`sent ${sent} dead letter(s) to the ingestor at ${endpoint}; what fails again is dead-lettered again (settle dead-letters list)`);
    });

  program
    .command('schema')
    .description('create the keyspace and apply schema/*.cql (idempotent; the compose stack runs it once)')
    .option('--schema-dir <dir>', 'folder of the versioned CQL files', 'schema')
    .action(async (options: { schemaDir: string }) => {
      const cfg = getConfig();
      const client = createScyllaClient({ ...scyllaOptionsFromConfig(cfg), keyspace: undefined });
      try {
        const result = await migrate(client, {
          schemaDir: path.resolve(io.cwd, options.schemaDir),
          keyspace: cfg.scylladb.keyspace,
          replicationFactor: cfg.scylladb.replication_factor,
          symbols: cfg.symbols.map((s) => s.name),
          historyBucketSeqs: cfg.scylladb.history_bucket_seqs,
        });
        if (globals().json) return printJson(result);
        print(`keyspace ${cfg.scylladb.keyspace}: ${result.applied.length} migration(s) applied, ${result.skipped.length} already there`);
      } finally {
        await client.shutdown();
      }
    });

  // Commands kept in their own files (issue 20: history, export, migrate-history).
  const context = { io, getConfig, getOps, json: () => globals().json === true, print, printJson };
  registerHistoryCommand(program, context);
  registerExportCommands(program, context);
  registerMigrateHistoryCommand(program, context);

  const closeOps = async () => {
    await ops?.close();
  };
  /** Where Redis is, without credentials, for error messages. */
  const redisTarget = (): string | undefined => config?.redis.url.replace(/\/\/[^@/]*@/, '//');
  return Object.assign(program, { closeOps, redisTarget });
}

function selectShards(o: Ops, shard: string | undefined): string[] {
  const all = deadLetterShards(o.catalog.shards);
  if (shard === undefined) return all;
  const schema = z.object({ shard: shardSchema(o.catalog).or(z.literal(all[all.length - 1]!)) });
  return [parseInput(schema, { shard }, 'arguments').shard];
}

function describe(payload: { mode: string; size?: number; userIds?: unknown[]; fix?: boolean }): string {
  const what = payload.mode === 'users' ? `${payload.userIds?.length ?? 0} user(s)` : payload.mode === 'sample' ? `sample of ${payload.size ?? 'default'} users` : 'full';
  return `${what}${payload.fix ? ', with fix' : ''}`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function progressLabel(status: ReconciliationStatus): string {
  const p = status.progress as Record<string, unknown> | null;
  const counts =
    p !== null && typeof p === 'object' && p['usersChecked'] !== undefined
      ? `, ${String(p['usersChecked'])}${p['usersTotal'] !== undefined ? `/${String(p['usersTotal'])}` : ''} users`
      : '';
  return `${status.state}${counts}`;
}

async function waitForReconciliation(o: Ops, id: string, timeoutMs: number, bar: ProgressBar): Promise<ReconciliationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await getReconciliation(o.reconcileQueue, o.reconciliations, id);
    const done = isFinished(status);
    bar.update({ percent: done && status.state === 'completed' ? 100 : progressPercent(status.progress), label: progressLabel(status) });
    if (done) {
      bar.finish();
      // The reconciler writes its record as the job ends; give it a moment to be visible.
      if (status.record === undefined || status.record.status === 'running') {
        await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
        return getReconciliation(o.reconcileQueue, o.reconciliations, id);
      }
      return status;
    }
    if (Date.now() > deadline) {
      bar.finish();
      throw new CliError(`reconciliation ${id} did not finish within ${Math.round(timeoutMs / 1000)} s (state ${status.state}); it goes on running`, ExitCode.TIMEOUT);
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

function summarize(status: ReconciliationStatus): string {
  const r = status.record;
  const lines = [`reconciliation ${status.id}: ${status.state}${r ? ` (record: ${r.status})` : ''}`];
  if (r !== undefined) {
    lines.push(`  mode ${r.mode}${r.fix ? ' with fix' : ''}, trigger ${r.trigger}`);
    lines.push(`  users checked ${r.usersChecked}, rows checked ${r.rowsChecked}, balance errors ${r.errors}, ${r.durationMs} ms`);
  }
  if (status.failedReason !== undefined) lines.push(`  failed: ${status.failedReason}`);
  return lines.join('\n');
}

/** Runs `settle` with argv (node, script, ...args); resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv]);
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, io, program.redisTarget());
  } finally {
    // The answer is printed by now: closing the connections must not keep the command from
    // exiting (a Redis or Cassandra that stopped answering would hold it forever).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      program.closeOps().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}

/** How long `runCli` waits for its connections to close after the command, ms. */
const CLOSE_WAIT_MS = 5_000;

function reportError(error: unknown, io: CliIo, redisTarget: string | undefined): number {
  const say = (message: string) => io.stderr.write(`settle: ${message}\n`);
  if (error instanceof CommanderError) {
    // Help and version end with exit 0; commander has already printed usage errors.
    return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (error instanceof CliError) {
    say(error.message);
    return error.exitCode;
  }
  if (error instanceof InputError || error instanceof ConfigError) {
    say(error.message);
    return ExitCode.USAGE;
  }
  if (error instanceof NotFoundError) {
    say(error.message);
    return ExitCode.NOT_FOUND;
  }
  say(describeFailure(error, redisTarget));
  return ExitCode.FAILURE;
}

/** Connection failures get a sentence an operator can act on. */
function describeFailure(error: unknown, redisTarget: string | undefined): string {
  const e = error as Error & { code?: string; innerErrors?: Record<string, Error> };
  if (e?.name === 'NoHostAvailableError') {
    const hosts = Object.entries(e.innerErrors ?? {}).map(([host, inner]) => `${host}: ${inner.message}`);
    return `cannot reach Cassandra/ScyllaDB (${hosts.join('; ') || e.message})`;
  }
  if (typeof e?.message === 'string' && /ECONNREFUSED|Connection is closed|ETIMEDOUT|max retries per request/i.test(e.message)) {
    return `cannot reach Redis${redisTarget === undefined ? '' : ` at ${redisTarget}`} (${e.message})`;
  }
  return e instanceof Error ? e.message : String(error);
}
