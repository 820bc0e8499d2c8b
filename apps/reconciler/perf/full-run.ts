/**
 * Benchmark of a full reconciliation: writes N users' balance rows and history in the settled
 * layout (default 100 000; direct batched inserts, bounded parallelism) into a fresh keyspace,
 * then times one full run. The run must find 0 errors, check every user and see conservation
 * hold, or the benchmark fails (exit 1): a broken run cannot look fast.
 *
 *   npx tsx apps/reconciler/perf/full-run.ts [--users 100000] [--page-size 500] [--concurrency 16] [--max-seconds 600] [--keep]
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadConfig, parseConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { changedUsersKey } from '@settlement/domain';
import { ChangedUsers, createLogger, createRedisConnection, hourOf } from '@settlement/runtime';
import { reconcileOnce } from '../src/index.js';
import { writeDataset } from '../test/dataset.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const options = new Command()
  .option('--users <n>', 'users to write (even)', (v) => Number(v), 100_000)
  .option('--page-size <n>', 'reconciliation.page_size', (v) => Number(v), 500)
  .option('--concurrency <n>', 'reconciliation.concurrency', (v) => Number(v), 16)
  .option('--write-concurrency <n>', 'batches in flight while loading', (v) => Number(v), 16)
  .option('--max-seconds <n>', 'abandon the run after this long (the benchmark then fails)', (v) => Number(v), 600)
  .option('--keep', 'keep the keyspace afterwards')
  .parse()
  .opts<{ users: number; pageSize: number; concurrency: number; writeConcurrency: number; maxSeconds: number; keep?: boolean }>();

const base = loadConfig({ cwd: ROOT });
const keyspace = `perf_reconcile_${randomBytes(4).toString('hex')}`;
const config = parseConfig({
  ...JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))),
  scylladb: { ...base.scylladb, keyspace },
  reconciliation: { ...base.reconciliation, page_size: options.pageSize, concurrency: options.concurrency },
  log_level: 'warn',
});
const logger = createLogger({ app: 'reconciler-perf', level: 'warn' });
const say = (message: string) => process.stdout.write(`${message}\n`);

const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
let failed = false;
try {
  await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace, replicationFactor: 1, symbols: config.symbols.map((s) => s.name) });
  const client = createScyllaClient(scyllaOptionsFromConfig(config));
  await client.connect();
  const loadStart = performance.now();
  let lastReport = 0;
  const totals = await writeDataset({
    client,
    keyspace,
    symbols: config.symbols.map((s) => s.name),
    feeAccountUserId: config.fee_account_user_id,
    users: options.users,
    blockUsers: 2000,
    concurrency: options.writeConcurrency,
    onBlock: (written) => {
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        say(`  loaded ${written} users (${Math.round((performance.now() - loadStart) / 1000)} s)`);
      }
    },
  });
  await client.shutdown();
  const loadSeconds = (performance.now() - loadStart) / 1000;
  say(`loaded ${totals.users} users: ${totals.statements} statements, ${totals.balanceRows} balance rows in ${loadSeconds.toFixed(1)} s (${Math.round(totals.statements / loadSeconds)} statements/s)`);

  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.maxSeconds * 1000);
  const summary = await reconcileOnce({ config, logger, request: { mode: 'full' }, trigger: 'perf', signal: abort.signal });
  clearTimeout(timer);
  const seconds = summary.durationMs / 1000;
  say(
    `full run: ${summary.usersChecked} users, ${summary.rowsChecked} rows in ${seconds.toFixed(1)} s = ${summary.rowsPerSecond} rows/s, ` +
      `${Math.round(summary.usersChecked / seconds)} users/s (page_size ${options.pageSize}, concurrency ${options.concurrency}); ` +
      `status ${summary.status}, errors ${summary.errors}, warnings ${summary.warnings}, conservation ${summary.conservation?.checked ? (summary.conservation.assets.every((a) => a.ok) ? 'holds' : 'BROKEN') : 'not checked'}`,
  );
  const problems = [
    summary.status !== 'completed' && `status is ${summary.status}`,
    summary.errors !== 0 && `${summary.errors} errors`,
    summary.usersChecked !== options.users + 1 && `checked ${summary.usersChecked} users, expected ${options.users + 1}`,
    // Three rows per user (one funding, two trade-shard rows) and the fee account's two.
    summary.rowsChecked !== options.users * 3 + 2 && `checked ${summary.rowsChecked} rows, expected ${options.users * 3 + 2}`,
    !(summary.conservation?.checked && summary.conservation.assets.every((a) => a.ok)) && 'conservation not confirmed',
    ...[...totals.supply].map(([assetId, supply]) => {
      const asset = summary.conservation?.assets.find((a) => a.assetId === assetId);
      return asset?.expected !== supply.toString() && `asset ${assetId}: expected supply ${supply}, run saw ${asset?.expected}`;
    }),
  ].filter((p): p is string => typeof p === 'string');

  // The hourly run checks the users the settlers recorded as changed: here every user, so its
  // users/s compares with the full run's on the same data (the full run also sums conservation).
  const redis = createRedisConnection(config.redis.url);
  const prefix = `{perf${randomBytes(3).toString('hex')}}`;
  try {
    const changed = new ChangedUsers({ redis, prefix, retainHours: 1 });
    const lister = createScyllaClient(scyllaOptionsFromConfig(config));
    const ids: bigint[] = [];
    let pageState: string | undefined;
    do {
      const page = await lister.execute(`SELECT DISTINCT user_id FROM ${keyspace}.user_balances`, [], { prepare: true, fetchSize: 5_000, pageState });
      for (const row of page.rows) ids.push(row['user_id'] as bigint);
      pageState = page.pageState ?? undefined;
    } while (pageState !== undefined);
    await lister.shutdown();
    for (let i = 0; i < ids.length; i += 5_000) await changed.record(ids.slice(i, i + 5_000));
    const changedConfig = { ...config, redis: { ...config.redis, prefix }, reconciliation: { ...config.reconciliation, changed_users_max: ids.length + 1 } };
    const hourly = await reconcileOnce({ config: changedConfig, logger, request: { mode: 'changed' }, trigger: 'perf' });
    const hourlySeconds = hourly.durationMs / 1000;
    const fullUsersPerS = summary.usersChecked / seconds;
    const hourlyUsersPerS = hourly.usersChecked / hourlySeconds;
    say(
      `changed-users run: ${hourly.usersChecked} users in ${hourlySeconds.toFixed(1)} s = ${Math.round(hourlyUsersPerS)} users/s, errors ${hourly.errors}; ` +
        `projected over 1,000,000 users: full ${Math.round(1_000_000 / fullUsersPerS)} s, changed-users ${Math.round(1_000_000 / hourlyUsersPerS)} s`,
    );
    if (hourly.errors !== 0 || hourly.usersChecked !== ids.length) problems.push(`changed-users run: ${hourly.errors} errors, ${hourly.usersChecked} of ${ids.length} users`);
    await redis.del(changedUsersKey(prefix, hourOf(Date.now())));
  } finally {
    await redis.quit();
  }
  if (problems.length > 0) {
    failed = true;
    say(`BENCHMARK FAILED: ${problems.join('; ')}`);
  }
} catch (error) {
  failed = true;
  say(`BENCHMARK FAILED: ${(error as Error).stack ?? error}`);
} finally {
  if (!options.keep) await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await admin.shutdown();
}
process.exit(failed ? 1 : 0);

