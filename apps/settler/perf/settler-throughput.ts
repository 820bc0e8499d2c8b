/**
 * Settler throughput against the raw Cassandra ceiling, in one run on the same machine.
 *
 *   npx tsx apps/settler/perf/settler-throughput.ts [FLAGS]   (USAGE below, or --help)
 *
 * raw: the statements of settlement-writer, built up front from precomputed rows, executed
 * directly, one batch in flight per symbol shard (3). settler: the same trades pre-filled into
 * the shard queues as 50-message jobs, settled in-process by startSettler. Both keyspaces must
 * end with the same balances as the independent sum of deltas, else the run exits 1.
 * Prints JSON: trades/s of each path, their ratio, and the Node CPU spent per 1 000 trades.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import {
  MarketCatalog,
  SETTLE_JOB_NAME,
  balanceRowKey,
  encodeSettlementJob,
  planSettlement,
  settlementJobId,
  type BalanceRow,
  type TradeMessage,
} from '@settlement/domain';
import { createLogger, createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import {
  BalanceRepository,
  SettlementWriter,
  WatermarkRepository,
  createScyllaClient,
  migrate,
  scyllaOptionsFromConfig,
  type CqlStatement,
} from '@settlement/scylla';
import { parseScriptArgs } from '@settlement/tools';
import { startSettler } from '../src/index.js';
// The one seeded generator of the repository (the simulator's), so a seed means the same stream everywhere.
import { Rng } from '@settlement/simulator';
import { expectedBalances } from '../test/stream-generator.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const USAGE = `
npx tsx apps/settler/perf/settler-throughput.ts [FLAGS]: in-process settler against the raw
LOGGED BATCH path on the same pre-filled trades

  --trades 30000      trades (three symbol shards)
  --users 10000       simulated users
  --job 50            messages per job
  --rounds 1          raw/settler rounds
  --settler-only      time only the settler path (e.g. under --cpu-prof); the raw path runs
                      once at the end, for the balance check
  --profile PREFIX    V8 CPU profiles: the first raw round to PREFIX-raw.cpuprofile, the last
                      settler round to PREFIX-settler.cpuprofile
  -h, --help          this text
`;

const args = parseScriptArgs(USAGE, {
  trades: { type: 'string', default: '30000' },
  users: { type: 'string', default: '10000' },
  job: { type: 'string', default: '50' },
  rounds: { type: 'string', default: '1' },
  'settler-only': { type: 'boolean', default: false },
  profile: { type: 'string' },
});
const TRADES = Number(args.trades);
const USERS = Number(args.users);
const JOB = Number(args.job);
const ROUNDS = Number(args.rounds);

function log(message: string): void {
  process.stderr.write(`[perf] ${message}\n`);
}

function generateTrades(catalog: MarketCatalog): TradeMessage[] {
  const rng = new Rng(2024);
  const markets = [...catalog.markets.values()];
  const trades: TradeMessage[] = [];
  for (let i = 0; i < TRADES; i++) {
    const market = markets[i % markets.length]!;
    const seq = BigInt(i + 1);
    const quantity = BigInt(rng.int(1, 2_000)) * 10_000n;
    const price = BigInt(rng.int(1, 5_000)) * 10_000n;
    const quoteAmount = (price * quantity) / market.quoteDivisor;
    const withFee = rng.next() < 0.3;
    trades.push({
      kind: 'trade', shard: market.name, seq, tradeId: 1_000_000n + seq, buyOrderId: seq * 2n, sellOrderId: seq * 2n + 1n,
      buyerUserId: BigInt(rng.int(1, USERS)), sellerUserId: BigInt(rng.int(1, USERS)), price, quantity, quoteAmount,
      baseAsset: market.baseAsset, quoteAsset: market.quoteAsset, buyerRefund: BigInt(rng.int(0, 100)), sellerRefund: 0n,
      buyerFee: withFee ? quantity / 1000n : 0n, sellerFee: withFee ? quoteAmount / 1000n : 0n,
      matchSeq: seq, outputSequence: seq, settledAt: 1_700_000_000_000n + seq,
      buyerQuoteVersion: seq, buyerBaseVersion: seq, sellerBaseVersion: seq, sellerQuoteVersion: seq,
    });
  }
  return trades;
}

function byShard(trades: readonly TradeMessage[]): Map<string, TradeMessage[]> {
  const out = new Map<string, TradeMessage[]>();
  for (const t of trades) out.set(t.shard, [...(out.get(t.shard) ?? []), t]);
  return out;
}

/** The raw path's batches: the rows a settler would write, computed before the clock starts. */
function rawBatches(config: Readonly<SettlementConfig>, catalog: MarketCatalog, writer: SettlementWriter, shards: Map<string, TradeMessage[]>): Map<string, CqlStatement[][]> {
  const out = new Map<string, CqlStatement[][]>();
  for (const [shard, trades] of shards) {
    const rows = new Map<string, BalanceRow>();
    const batches: CqlStatement[][] = [];
    let writeTs = 1_000_000n;
    let batchCount = 0n;
    for (let i = 0; i < trades.length; i += JOB) {
      const slice = trades.slice(i, i + JOB);
      const plan = planSettlement({
        shard, market: catalog.market(shard), assetIds: new Set(catalog.assets.keys()), feeAccountUserId: catalog.feeAccountUserId,
        afterSeq: i === 0 ? 0n : trades[i - 1]!.seq, messages: slice, settledTradeSeqs: new Map(),
        current: (key) => rows.get(key), batchStatementsMax: config.settler.batch_statements_max,
      });
      for (const chunk of plan.chunks) {
        for (const row of chunk.rows) rows.set(balanceRowKey(row.userId, row.assetId), row);
        batches.push(
          writer.buildStatements({
            shard, writeTimestampUs: ++writeTs, trades: chunk.trades, fundingEvents: chunk.funding, balanceRows: chunk.rows, deadLetters: [],
            watermark: { lastSeq: chunk.lastSeq, batchCount: ++batchCount, jobId: settlementJobId(shard, slice[0]!.seq, slice.at(-1)!.seq), updatedAt: new Date() },
          }),
        );
      }
    }
    out.set(shard, batches);
  }
  return out;
}

async function balancesOf(client: cassandra.Client, keyspace: string): Promise<Map<string, string>> {
  const out = new Map<string, bigint[]>();
  for await (const row of new BalanceRepository(client, keyspace).scanAll(5000)) {
    const key = balanceRowKey(row.userId, row.assetId);
    const sum = out.get(key) ?? [0n, 0n];
    out.set(key, [sum[0]! + row.available, sum[1]! + row.locked]);
  }
  return new Map([...out].map(([k, [a, l]]) => [k, `${a}/${l}`]));
}

function sameBalances(actual: Map<string, string>, expected: Map<string, string>): string | undefined {
  for (const [key, value] of expected) if ((actual.get(key) ?? '0/0') !== value) return `${key}: expected ${value}, got ${actual.get(key)}`;
  for (const [key, value] of actual) if (!expected.has(key) && value !== '0/0') return `${key}: unexpected ${value}`;
  return undefined;
}

/** Starts the V8 profiler in this process; the returned function stops it and writes the profile. */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  const post = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async (file) => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`CPU profile of the settler phase written to ${file}`);
  };
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

async function main(): Promise<void> {
  const base = loadConfig({ cwd: ROOT });
  const tag = randomBytes(4).toString('hex');
  const configFor = (name: string): Readonly<SettlementConfig> =>
    parseConfig({ ...JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))), scylladb: { ...base.scylladb, keyspace: `perf_${name}_${tag}` }, redis: { ...base.redis, prefix: `{perf${tag}}` }, log_level: 'warn' });
  const rawConfig = configFor('raw');
  const settlerConfig = configFor('settler');
  const catalog = new MarketCatalog(base);
  const symbols = base.symbols.map((s) => s.name);

  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(base), keyspace: undefined });
  for (const config of [rawConfig, settlerConfig]) {
    await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: config.scylladb.keyspace, replicationFactor: 1, symbols });
  }
  const client = createScyllaClient({ ...scyllaOptionsFromConfig(base), keyspace: undefined });
  await client.connect();
  const redis = createRedisConnection(base.redis.url);
  const queues = new Map<string, Queue>();
  let exitCode = 0;
  try {
    const trades = generateTrades(catalog);
    const shards = byShard(trades);
    const expected = new Map(
      [...expectedBalances(trades, catalog.feeAccountUserId).rows].map(([k, r]) => [k, `${r.available}/${r.locked}`]),
    );
    log(`${TRADES} trades over ${shards.size} shards, ${USERS} users, jobs of ${JOB}`);

    // Raw ceiling.
    const writer = new SettlementWriter({ client, keyspace: rawConfig.scylladb.keyspace, symbols, consistency: base.scylladb.consistency, feeAccountUserId: catalog.feeAccountUserId });
    let rawProfiled = false;
    const runRaw = async (): Promise<{ tradesPerSecond: number; nodeCpuMsPer1000: number }> => {
      // Built per run and dropped after it, so the settler phase does not carry (and collect
      // around) a heap of prebuilt statements.
      const batches = rawBatches(rawConfig, catalog, writer, shards);
      const profiler = args.profile === undefined || rawProfiled ? undefined : await startProfile();
      rawProfiled = true;
      const cpu = process.cpuUsage();
      const started = performance.now();
      await Promise.all([...batches.values()].map(async (list) => {
        for (const statements of list) await writer.execute(statements);
      }));
      const seconds = (performance.now() - started) / 1000;
      if (profiler !== undefined) await profiler(`${args.profile!}-raw.cpuprofile`);
      return { tradesPerSecond: Math.round(TRADES / seconds), nodeCpuMsPer1000: Math.round((cpuMs(cpu) / TRADES) * 1000 * 10) / 10 };
    };

    // Settler, on pre-filled queues.
    const runSettler = async (round: number): Promise<{ tradesPerSecond: number; nodeCpuMsPer1000: number }> => {
      const config = round === 0 ? settlerConfig : configFor(`settler${round}`);
      if (round > 0) await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: config.scylladb.keyspace, replicationFactor: 1, symbols });
      for (const [shard, list] of shards) {
        const queue = queues.get(shard) ?? createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix });
        queues.set(shard, queue);
        await queue.obliterate({ force: true });
        const jobs = [];
        for (let i = 0; i < list.length; i += JOB) {
          const slice = list.slice(i, i + JOB);
          jobs.push({ name: SETTLE_JOB_NAME, data: encodeSettlementJob(shard, i === 0 ? 0n : list[i - 1]!.seq, slice), opts: { jobId: settlementJobId(shard, slice[0]!.seq, slice.at(-1)!.seq) } });
        }
        for (let i = 0; i < jobs.length; i += 500) await queue.addBulk(jobs.slice(i, i + 500));
      }
      const watermarks = new WatermarkRepository(client, config.scylladb.keyspace);
      const targets = new Map([...shards].map(([shard, list]) => [shard, list.at(-1)!.seq]));
      const settlerClient = createScyllaClient(scyllaOptionsFromConfig(config));
      await settlerClient.connect();
      const profiler = args.profile === undefined ? undefined : await startProfile();
      const loopDelay = monitorEventLoopDelay({ resolution: 5 });
      loopDelay.enable();
      const cpu = process.cpuUsage();
      const started = performance.now();
      const settler = await startSettler({ config, logger: createLogger({ app: 'settler-perf', level: 'warn' }), client: settlerClient, shards: [...shards.keys()] });
      for (;;) {
        const stored = new Map((await watermarks.list()).map((w) => [w.shard, w.lastSeq]));
        if ([...targets].every(([s, q]) => (stored.get(s) ?? 0n) >= q)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const seconds = (performance.now() - started) / 1000;
      const nodeCpu = cpuMs(cpu);
      loopDelay.disable();
      log(`settler: event loop delay p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms`);
      if (profiler !== undefined) await profiler(`${args.profile!}-settler.cpuprofile`);
      const meanMs = async (metric: { get(): Promise<{ values: Array<{ metricName?: string; value: number }> }> }): Promise<number> => {
        const values = (await metric.get()).values;
        const sum = values.filter((v) => v.metricName?.endsWith('_sum')).reduce((n, v) => n + v.value, 0);
        const count = values.filter((v) => v.metricName?.endsWith('_count')).reduce((n, v) => n + v.value, 0);
        return Math.round((sum / count) * 1000 * 10) / 10;
      };
      log(`settler: mean job ${await meanMs(settler.metrics.jobDuration)} ms, mean read ${await meanMs(settler.metrics.readLatency)} ms, mean batch write ${await meanMs(settler.metrics.writeLatency)} ms, ${(seconds * 1000 / (TRADES / JOB / shards.size)).toFixed(1)} ms per job per shard, prefetch hits ${(await settler.metrics.prefetchHits.get()).values.reduce((n, v) => n + v.value, 0)}`);
      await settler.close();
      await settlerClient.shutdown();
      const mismatch = sameBalances(await balancesOf(client, config.scylladb.keyspace), expected);
      if (mismatch !== undefined) throw new Error(`settler balances differ from the expected sums: ${mismatch}`);
      if (round > 0) await admin.execute(`DROP KEYSPACE IF EXISTS ${config.scylladb.keyspace}`);
      return { tradesPerSecond: Math.round(TRADES / seconds), nodeCpuMsPer1000: Math.round((nodeCpu / TRADES) * 1000 * 10) / 10 };
    };

    const raw: Array<{ tradesPerSecond: number; nodeCpuMsPer1000: number }> = [];
    const settler: Array<{ tradesPerSecond: number; nodeCpuMsPer1000: number }> = [];
    const withRaw = args['settler-only'] !== true;
    if (withRaw) raw.push(await runRaw());
    log(`raw: ${JSON.stringify(raw.at(-1))}`);
    for (let round = 0; round < ROUNDS; round++) {
      settler.push(await runSettler(round));
      log(`settler: ${JSON.stringify(settler.at(-1))}`);
      if (withRaw) raw.push(await runRaw());
      log(`raw: ${JSON.stringify(raw.at(-1))}`);
    }
    if (!withRaw) raw.push(await runRaw());
    const rawMismatch = sameBalances(await balancesOf(client, rawConfig.scylladb.keyspace), expected);
    if (rawMismatch !== undefined) throw new Error(`raw balances differ from the expected sums: ${rawMismatch}`);

    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rawMean = mean(raw.map((r) => r.tradesPerSecond));
    const settlerMean = mean(settler.map((r) => r.tradesPerSecond));
    process.stdout.write(
      `${JSON.stringify(
        {
          trades: TRADES,
          users: USERS,
          jobMessages: JOB,
          shards: shards.size,
          rawTradesPerSecond: raw.map((r) => r.tradesPerSecond),
          settlerTradesPerSecond: settler.map((r) => r.tradesPerSecond),
          ratio: Math.round((settlerMean / rawMean) * 1000) / 1000,
          rawNodeCpuMsPer1000Trades: raw.map((r) => r.nodeCpuMsPer1000),
          settlerNodeCpuMsPer1000Trades: settler.map((r) => r.nodeCpuMsPer1000),
          balancesVerified: true,
        },
        null,
        2,
      )}\n`,
    );
  } catch (error) {
    log(`FAILED: ${(error as Error).stack ?? String(error)}`);
    exitCode = 1;
  } finally {
    for (const queue of queues.values()) {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
    await redis.quit();
    await client.shutdown();
    for (const config of [rawConfig, settlerConfig]) await admin.execute(`DROP KEYSPACE IF EXISTS ${config.scylladb.keyspace}`).catch(() => undefined);
    await admin.shutdown();
  }
  process.exit(exitCode);
}

await main();
