/**
 * The chaos run: a simulated stream settled by the real processes while faults are injected at
 * random moments (from a seed): SIGKILL of a settler, of the ingestor, of the reconciler; Redis
 * killed and restarted; Cassandra restarted; a settler paused longer than its lock; plus
 * duplicated, reordered and malformed messages in the stream. Then it checks that every balance
 * equals the simulator's expectation, conservation holds, every trade is settled exactly once,
 * every malformed message is in the dead letter, and a full reconciliation finds 0 errors.
 *
 * It runs on a private Redis and a private Cassandra, so it can restart them freely.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type cassandra from 'cassandra-driver';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { MarketCatalog, FUNDING_SHARD } from '@settlement/domain';
import { BalanceRepository, createScyllaClient, migrate, scyllaOptionsFromConfig, u64FromCql, UNROUTED_SHARD } from '@settlement/scylla';
import { reconcileOnce } from '@settlement/reconciler';
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { ChildApp, ROOT, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions } from '@settlement/tools';
import { writeConfigYaml } from './config-file.js';
import { PrivateRedis } from './private-redis.js';

export const FAULT_KINDS = ['kill-settler', 'kill-ingestor', 'kill-reconciler', 'restart-redis', 'restart-cassandra', 'pause-settler'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  /** Valid messages in the stream (trades are about 70 % of them). */
  readonly messages: number;
  readonly faults: number;
  readonly seed: number;
  /** Offered rate, messages/s. */
  readonly ratePerSecond: number;
  readonly users: number;
  readonly settlers: number;
  /** Ports of the private Redis / Cassandra / ZMQ sockets; the run's own. */
  readonly portBase: number;
  /** Fault kinds to use (default all). */
  readonly kinds?: readonly FaultKind[];
  readonly logger: Logger;
  /** Where logs and the private stack's files go. */
  readonly workDir: string;
}

export interface FaultRecord {
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly target: string;
  readonly durationMs: number;
}

export interface ChaosCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ChaosReport {
  readonly seed: number;
  readonly messages: number;
  readonly trades: number;
  readonly faults: FaultRecord[];
  readonly injected: { duplicates: number; swaps: number; malformed: number };
  readonly checks: ChaosCheck[];
  readonly ok: boolean;
  readonly elapsedMs: number;
}

/** A small seeded PRNG (mulberry32), so the fault plan is the same for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every row of a query, page by page. */
async function allRows(client: cassandra.Client, query: string, params: unknown[]): Promise<cassandra.types.Row[]> {
  const rows: cassandra.types.Row[] = [];
  let pageState: string | undefined;
  do {
    const page = await client.execute(query, params, { prepare: true, fetchSize: 5000, pageState });
    rows.push(...page.rows);
    pageState = page.pageState ?? undefined;
  } while (pageState);
  return rows;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chaosConfig(options: ChaosOptions, redisUrl: string, cassandraPort: number): Readonly<SettlementConfig> {
  const base = loadConfig({ cwd: ROOT, env: {} });
  const raw = JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as {
    [key: string]: Record<string, unknown>;
  };
  raw['scylladb'] = { ...raw['scylladb'], hosts: [`127.0.0.1:${cassandraPort}`], keyspace: 'chaos', request_timeout_ms: 5000 };
  raw['redis'] = { ...raw['redis'], url: redisUrl, prefix: '{chaos}' };
  raw['zmq'] = { ...raw['zmq'], settlement_port: options.portBase + 1, replay_endpoint: `tcp://127.0.0.1:${options.portBase + 2}` };
  raw['settler'] = { ...raw['settler'], lock_duration_ms: 4000 };
  raw['reconciliation'] = { ...raw['reconciliation'], enabled: true, interval_seconds: 20, sample_size: 200 };
  (raw as Record<string, unknown>)['data_dir'] = path.join(options.workDir, 'data');
  (raw as Record<string, unknown>)['log_level'] = 'info';
  return parseConfig(raw);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = options.logger;
  const random = prng(options.seed);
  const redis = new PrivateRedis(options.portBase, path.join(options.workDir, 'redis'));
  const cassandraOptions: LocalCassandraOptions = {
    dir: path.join(options.workDir, 'cassandra'),
    port: options.portBase + 3,
    heapMb: 768,
    readyTimeoutMs: 120_000,
    // Acknowledged writes must survive the restart: sync the commit log before acknowledging.
    yamlOverrides: { commitlog_sync: 'batch', commitlog_sync_batch_window_in_ms: 2, commitlog_sync_period_in_ms: undefined },
  };
  const quiet = (message: string) => log.info(message);
  await redis.start();
  await startLocalCassandra(cassandraOptions, quiet);
  const config = chaosConfig(options, redis.url, cassandraOptions.port);
  const configFile = writeConfigYaml(config, path.join(options.workDir, 'config.yaml'));
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  await admin.execute('DROP KEYSPACE IF EXISTS chaos');
  await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: 'chaos', replicationFactor: 1, symbols: config.symbols.map((s) => s.name) });
  await admin.shutdown();
  const flush = new Redis(redis.url);
  await flush.flushall();
  await flush.quit();

  const simulator = createSimulator({
    market: marketFromConfig(config),
    messages: options.messages,
    users: options.users,
    seed: options.seed,
    duplicateRate: 0.01,
    reorderRate: 0.01,
    malformedRate: 0.002,
    logger: log,
  });
  const replay = await simulator.serveReplay(config.zmq.replay_endpoint!);
  const env = { ...process.env, SETTLEMENT_CONFIG: configFile, LOG_LEVEL: 'info' };
  const logDir = path.join(options.workDir, 'logs');
  const ingestor = new ChildApp({ app: 'ingestor', name: 'ingestor', env, logDir }).start();
  const settlers = Array.from({ length: options.settlers }, (_, i) => new ChildApp({ app: 'settler', name: `settler-${i + 1}`, env, logDir }).start());
  const reconciler = new ChildApp({ app: 'reconciler', name: 'reconciler', env, logDir }).start();
  const apps = [ingestor, ...settlers, reconciler];

  const faults: FaultRecord[] = [];
  const checks: ChaosCheck[] = [];
  let client: cassandra.Client | undefined;
  try {
    await sleep(3000);
    const sendMs = (simulator.schedule.entries.length / options.ratePerSecond) * 1000;
    const sending = simulator.send({ mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: options.ratePerSecond, lingerMs: 600_000, logger: log });

    // Fault plan: every kind at least once (when there are enough faults), order and moments random.
    const kinds = options.kinds ?? FAULT_KINDS;
    const plan: FaultKind[] = Array.from({ length: options.faults }, (_, i) => kinds[i % kinds.length]!);
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }
    const moments = plan.map(() => 0.05 + random() * 0.85).sort((a, b) => a - b).map((f) => f * sendMs);
    for (const [i, kind] of plan.entries()) {
      const waitMs = moments[i]! - (Date.now() - started - 3000);
      if (waitMs > 0) await sleep(waitMs);
      const atMs = Date.now() - started;
      const t0 = Date.now();
      let target = '';
      switch (kind) {
        case 'kill-settler': {
          const s = settlers[Math.floor(random() * settlers.length)]!;
          target = s.options.name;
          await s.stop('SIGKILL');
          await sleep(300 + random() * 1500);
          await s.restart();
          break;
        }
        case 'kill-ingestor':
          target = 'ingestor';
          await ingestor.stop('SIGKILL');
          await sleep(300 + random() * 1500);
          await ingestor.restart();
          break;
        case 'kill-reconciler':
          target = 'reconciler';
          await reconciler.stop('SIGKILL');
          await sleep(200 + random() * 800);
          await reconciler.restart();
          break;
        case 'restart-redis':
          target = 'redis';
          await redis.kill();
          await sleep(1000 + random() * 2000);
          await redis.start();
          break;
        case 'restart-cassandra':
          target = 'cassandra';
          await stopLocalCassandra(cassandraOptions, quiet);
          await sleep(500 + random() * 1500);
          await startLocalCassandra(cassandraOptions, quiet);
          break;
        case 'pause-settler': {
          const s = settlers[Math.floor(random() * settlers.length)]!;
          target = s.options.name;
          s.signal('SIGSTOP');
          // Longer than its lock (settler.lock_duration_ms), so another settler takes the job.
          await sleep(config.settler.lock_duration_ms + 1500 + random() * 1500);
          s.signal('SIGCONT');
          break;
        }
      }
      const record = { atMs, kind, target, durationMs: Date.now() - t0 };
      faults.push(record);
      log.info(record, 'fault injected');
    }
    const report = await sending;
    log.info({ sent: report.sent }, 'stream sent');

    // Settled: every shard's watermark at the last sequence the simulator sent for it.
    const expected = simulator.expected();
    const catalog = new MarketCatalog(config);
    const wantLast = new Map<string, bigint>([...catalog.markets.keys()].map((s) => [s, BigInt(expected.lastSequences.bySymbol[s] ?? '0')]));
    wantLast.set(FUNDING_SHARD, BigInt(expected.lastSequences.funding));
    client = createScyllaClient(scyllaOptionsFromConfig(config));
    await client.connect();
    const deadline = Date.now() + 10 * 60_000;
    let lagging: string[] = [];
    while (Date.now() < deadline) {
      const rows = (await client.execute('SELECT shard, last_seq FROM chaos.shard_watermarks', [], { prepare: true })).rows;
      const have = new Map(rows.map((r) => [r['shard'] as string, r['last_seq'] as bigint]));
      lagging = [...wantLast].filter(([shard, seq]) => (have.get(shard) ?? 0n) < seq).map(([shard, seq]) => `${shard} at ${have.get(shard) ?? 0n}/${seq}`);
      if (lagging.length === 0) break;
      for (const app of apps) if (!app.running) await app.restart();
      await sleep(1000);
    }
    checks.push({ name: 'every shard settled to its last sequence', ok: lagging.length === 0, detail: lagging.length === 0 ? 'all shards' : `lagging: ${lagging.join(', ')}` });

    // Balances and conservation.
    const balances = new BalanceRepository(client, 'chaos');
    const mismatches: string[] = [];
    const sums = new Map<number, bigint>();
    let checked = 0;
    const users = Object.keys(expected.balances);
    for (let i = 0; i < users.length; i += 64) {
      await Promise.all(
        users.slice(i, i + 64).map(async (user) => {
          const got = new Map((await balances.getUserBalances(BigInt(user))).map((b) => [b.assetId, b]));
          for (const [asset, want] of Object.entries(expected.balances[user]!)) {
            checked += 1;
            const have = got.get(Number(asset));
            // A row that nets to zero may never have been written: no row reads as 0/0.
            if ((have?.available ?? 0n) !== BigInt(want.available) || (have?.frozen ?? 0n) !== BigInt(want.locked)) {
              mismatches.push(`user ${user} asset ${asset}: expected ${want.available}/${want.locked}, got ${have?.available ?? '-'}/${have?.frozen ?? '-'}`);
            }
          }
          for (const b of got.values()) sums.set(b.assetId, (sums.get(b.assetId) ?? 0n) + b.total);
        }),
      );
    }
    checks.push({ name: 'every balance equals the expectation', ok: mismatches.length === 0, detail: `${checked} balances, ${mismatches.length} mismatches${mismatches.length ? `: ${mismatches.slice(0, 5).join('; ')}` : ''}` });
    const broken = Object.entries(expected.totals).filter(([asset, t]) => (sums.get(Number(asset)) ?? 0n) !== BigInt(t.deposits) - BigInt(t.withdrawals));
    checks.push({ name: 'conservation per asset', ok: broken.length === 0, detail: broken.length === 0 ? `${Object.keys(expected.totals).length} assets: sum = deposits − withdrawals` : `broken for assets ${broken.map(([a]) => a).join(', ')}` });

    // Every trade settled exactly once: the trade tables hold exactly the simulator's trade ids.
    const wantTrades = new Map<string, Set<string>>();
    for (const m of simulator.messages) {
      if (m.kind !== 'trade') continue;
      const id = /"trade_id":(\d+)/.exec(m.head)?.[1];
      if (id === undefined) throw new Error('simulator trade without trade_id');
      let set = wantTrades.get(m.shard);
      if (set === undefined) wantTrades.set(m.shard, (set = new Set()));
      set.add(id);
    }
    const tradeProblems: string[] = [];
    let tradesFound = 0;
    for (const [symbol, want] of wantTrades) {
      const seen = new Set<string>();
      for (const row of await allRows(client, `SELECT trade_id FROM chaos.settled_trades_${symbol}`, [])) {
        seen.add(u64FromCql(row['trade_id'] as bigint).toString());
      }
      tradesFound += seen.size;
      const missing = [...want].filter((id) => !seen.has(id));
      const extra = [...seen].filter((id) => !want.has(id));
      if (missing.length || extra.length) tradeProblems.push(`${symbol}: ${missing.length} missing, ${extra.length} unexpected`);
    }
    checks.push({ name: 'every trade settled, none unexpected', ok: tradeProblems.length === 0, detail: tradeProblems.length ? tradeProblems.join('; ') : `${tradesFound} trades` });

    // Every malformed message kept with a reason: dead_letters table or the failed-trades file.
    const kept = new Set<string>();
    for (const shard of [UNROUTED_SHARD, ...catalog.shards]) {
      for (const row of await allRows(client, 'SELECT raw FROM chaos.dead_letters WHERE shard = ?', [shard])) {
        kept.add(row['raw'] as string);
      }
    }
    const failedFile = path.join(config.data_dir, config.backup.failed_trades_file);
    if (existsSync(failedFile)) {
      for (const line of readFileSync(failedFile, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const entry = JSON.parse(line) as { raw?: string };
          if (typeof entry.raw === 'string') kept.add(entry.raw);
        } catch {
          // A torn last line after a kill: its message is also in the table or was retried.
        }
      }
    }
    const lost = expected.malformed.filter((m) => !kept.has(m.raw) && !kept.has(Buffer.from(m.raw).toString('base64')));
    checks.push({ name: 'every malformed message dead-lettered', ok: lost.length === 0, detail: `${expected.malformed.length - lost.length}/${expected.malformed.length} kept${lost.length ? `; missing kinds: ${lost.map((m) => m.kind).join(', ')}` : ''}` });

    // A full reconciliation finds nothing.
    const reconciliation = await reconcileOnce({ config, logger: log, request: { mode: 'full', fix: false, trigger: 'chaos' } });
    checks.push({
      name: 'full reconciliation finds 0 errors',
      ok: reconciliation.errors === 0 && reconciliation.status === 'completed',
      detail: `${reconciliation.usersChecked} users, ${reconciliation.rowsChecked} rows, ${reconciliation.errors} errors (${JSON.stringify(reconciliation.byKind)}), status ${reconciliation.status}`,
    });

    const trades = [...wantTrades.values()].reduce((s, set) => s + set.size, 0);
    return {
      seed: options.seed,
      messages: simulator.messages.length,
      trades,
      faults,
      injected: { duplicates: expected.counts.duplicatesInjected, swaps: expected.counts.swapsInjected, malformed: expected.counts.malformedInjected },
      checks,
      ok: checks.every((c) => c.ok) && faults.length >= options.faults,
      elapsedMs: Date.now() - started,
    };
  } finally {
    await Promise.allSettled(apps.map((a) => a.stop('SIGTERM', 15_000)));
    apps.forEach((a) => a.close());
    await client?.shutdown().catch(() => undefined);
    await replay.close().catch(() => undefined);
    await simulator.close();
    await redis.kill();
    await stopLocalCassandra(cassandraOptions, quiet);
  }
}
