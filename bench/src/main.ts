/**
 * npm run bench: the raw Cassandra ceiling and the whole service, measured in the same run.
 *
 *  1. raw ceiling: the settler's own LOGGED BATCH statements for a simulated stream, precomputed,
 *     executed straight from cassandra-driver with one batch in flight per shard;
 *  2. the service: simulator → ZMQ → ingestor → BullMQ → settler processes → Cassandra at rising
 *     offered rates (fractions of the raw ceiling), then in closed-loop steps, each followed by
 *     the raw ceiling on its own messages (the ratio is the median of these pairs), then at half
 *     the maximum reached, with ZMQ-to-settled latency per message, queue depth, CPU per
 *     process, and balance queries (service vs raw single-partition read) idle and under load;
 *  3. checks the settled balances against the simulator's expectation: a broken run cannot look
 *     fast, and exits 1;
 *  4. the cost of database-level durability (durability-ceiling.ts): the raw ceiling on the
 *     start-of-run ceiling's messages on a private second Cassandra (own port and data folder,
 *     started for this phase only), with the periodic commit log users run and with the commit
 *     log synced before each acknowledgement (`commitlog_sync: batch`, window 2 ms, the chaos
 *     run's hardened mode); `--durability-ceiling off` skips it.
 * Prints a table, writes bench/results/bench-<time>.json and an SVG chart. Flags: USAGE below
 * (`npm run bench -- --help`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { spawnSync } from 'node:child_process';
import { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import { Redis } from 'ioredis';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { MarketCatalog, settlementQueueName, type SettlementMessage } from '@settlement/domain';
import { BalanceRepository, SettlementWriter, createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { createSimulator, marketFromConfig, sendPaced, type Simulator } from '@settlement/simulator';
import { ChildApp, ROOT, parseScriptArgs } from '@settlement/tools';
import { measureBalanceQueries, type BalanceQueryResult } from './balance-queries.js';
import { renderChart, type ChartPoint } from './chart.js';
import { checkBalances } from './check-balances.js';
import { CompletionTracker, type StageBreakdown } from './completions.js';
import { writeConfigYaml } from './config-file.js';
import { CpuMeter, findCassandraPid, waitUntilQuiet } from './cpu.js';
import { gcPausesBetween, localGcLog, type GcPauses } from './gc-pauses.js';
import { allCpus, pinProcess } from './pin.js';
import { round } from './latency.js';
import { DURABILITY_NODE_PORT, measureDurabilityCeilings, type DurabilityCeilingResult } from './durability-ceiling.js';
import { closedLoopWindowMessages, planRawBatches, rawChunking, runRawCeiling, type RawCeilingResult } from './raw-ceiling.js';
import { runRawLatency, type RawLatencyResult } from './raw-latency.js';
import { sequencedMessages } from './stream.js';
import { readSettlerTimings, timingsBetween, type ShardTimings } from './settler-timings.js';
import { formatTable } from './table.js';
import { BENCH_RING_PORT, benchRingDir, ringScyllaSection, startRing } from './chaos-ring.js';
import type { LocalRing } from '@settlement/tools';

const USAGE = `
npm run bench [-- FLAGS]: the raw Cassandra LOGGED BATCH ceiling and the whole service, in one run

  --rates 0.4,0.6,0.75,0.9,1.05   offered rates of the open-loop steps: fractions of the raw ceiling
  --absolute                      read --rates as messages/s instead
  --rate N                        one open-loop step at N messages/s (implies --absolute)
  --duration 12                   seconds per open-loop and closed-loop step
  --half-duration 30              seconds of the half-maximum step (the latency target's)
  --raw-duration 15               seconds of each raw ceiling
  --pairs 3                       closed-loop steps, each followed by a raw ceiling on its messages;
                                  the ratio is the median of their ratios
  --shards 3                      symbol shards used (1-3; funding comes on top)
  --settlers 2                    settler processes
  --batch 50                      messages per job and per raw batch
  --max-wait-ms N                 the ingestor's batch.max_wait_ms (default: the config's)
  --users 10000                   simulated users
  --seed 1                        simulator seed
  --warm-up N                     messages settled untimed first (default: users × 10)
  --query-rate 100                balance query pairs per second during the half-max step
  --pin                           Cassandra on CPU 0, everything else on CPU 1
  --durability-ceiling on         at the end, the raw ceiling on a private second Cassandra
                                  (port ${DURABILITY_NODE_PORT}, started for it and stopped after) with the
                                  periodic commit log and with commitlog_sync: batch (2 ms):
                                  the cost of database-level durability; off skips it
  --nodes 1                       3: against a private three-node ring (127.0.0.1-3, its own
                                  ports, data/bench/ring-<port>) at RF=3 and local_quorum, raw
                                  path and service alike; no durability ceiling; results in
                                  bench/results/bench-ring-<time>.json (latest.* untouched)
  --ring-port ${BENCH_RING_PORT}               the ring's CQL port (storage: port - 2042, port - 2041; never 9042)
  -h, --help                      this text

Prints a table, writes bench/results/bench-<time>.json and bench/results/latest.svg; exits 1 if
the settled balances differ from the simulator's.
`;

const args = parseScriptArgs(USAGE, {
  rates: { type: 'string', default: '0.4,0.6,0.75,0.9,1.05' },
  rate: { type: 'string' },
  absolute: { type: 'boolean', default: false },
  duration: { type: 'string', default: '12' },
  'half-duration': { type: 'string', default: '30' },
  'raw-duration': { type: 'string', default: '15' },
  pairs: { type: 'string', default: '3' },
  shards: { type: 'string', default: '3' },
  settlers: { type: 'string', default: '2' },
  batch: { type: 'string', default: '50' },
  'max-wait-ms': { type: 'string' },
  users: { type: 'string', default: '10000' },
  seed: { type: 'string', default: '1' },
  'warm-up': { type: 'string' },
  'query-rate': { type: 'string', default: '100' },
  pin: { type: 'boolean', default: false },
  'durability-ceiling': { type: 'string', default: 'on' },
  nodes: { type: 'string', default: '1' },
  'ring-port': { type: 'string', default: String(BENCH_RING_PORT) },
});

const say = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** A full garbage collection of this process (the load generator), between measured steps. */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function intArg(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    say(`--${name} must be an integer from ${min} to ${max}, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const stepSeconds = intArg('duration', args.duration, 3, 120);
// The latency target is a p99 of a steady half-loaded system: a longer step, so that the flushes
// and compactions of that load fall inside it at their own rate.
const halfStepSeconds = intArg('half-duration', args['half-duration'], 3, 300);
const rawSeconds = intArg('raw-duration', args['raw-duration'], 3, 120);
// The machine's noise moves a single service/raw ratio by ±20 % from run to run: the ratio is
// the median of several closed-loop steps, each against the raw ceiling on its own messages.
const pairCount = intArg('pairs', args.pairs, 1, 9);
const shardCount = intArg('shards', args.shards, 1, 3);
const settlerCount = intArg('settlers', args.settlers, 1, 8);
const batchMessages = intArg('batch', args.batch, 1, 1000);
// The ingestor's batch.max_wait_ms; default: the config's.
const maxWaitMs = args['max-wait-ms'] === undefined ? undefined : intArg('max-wait-ms', args['max-wait-ms'], 1, 1000);
const userCount = intArg('users', args.users, 10, 1_000_000);
const seed = intArg('seed', args.seed, 0, 2 ** 31);
// Balance query pairs (service + raw) per second while the half-max step runs: an open loop, so
// the query load is the same whatever the latency, and does not take what the settling needs.
const queryPairsPerS = intArg('query-rate', args['query-rate'], 1, 10_000);
// The stream starts with every user's first deposits and locks: mostly funding events, on one
// shard. Both paths settle this start untimed and are measured on what follows.
const warmUpMessages = intArg('warm-up', args['warm-up'] ?? String(userCount * 10), 0, 10_000_000);
const rateSpecs = (args.rate ?? args.rates!).split(',').map((r) => Number(r));
if (rateSpecs.some((r) => !(r > 0))) {
  say(`--rates must be positive numbers, got ${args.rates}`);
  process.exit(2);
}
const absoluteRates = args.absolute || args.rate !== undefined;
if (args['durability-ceiling'] !== 'on' && args['durability-ceiling'] !== 'off') {
  say(`--durability-ceiling must be on or off, got ${args['durability-ceiling']}`);
  process.exit(2);
}
const nodeCount = intArg('nodes', args.nodes, 1, 3);
if (nodeCount === 2) {
  say('--nodes must be 1 or 3');
  process.exit(2);
}
const ringPort = intArg('ring-port', args['ring-port'], 3066, 65_535);
/** With --nodes 3: the ring (started in main) and the scylladb settings pointing at it. */
let ring: LocalRing | undefined;
// The durability ceiling is a single-node measurement.
const durabilityCeilingOn = args['durability-ceiling'] === 'on' && nodeCount === 1;

function benchConfig(keyspace: string, prefix: string): Readonly<SettlementConfig> {
  const base = loadConfig({ cwd: ROOT });
  const plain = JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  return parseConfig({
    ...plain,
    scylladb: { ...plain['scylladb'], keyspace, ...(ring === undefined ? {} : ringScyllaSection(ring)) },
    // On a ring: its own queue prefix and ingestor port, so it never meets a single-node bench.
    redis: { ...plain['redis'], prefix: ring === undefined ? prefix : `${prefix.slice(0, -1)}ring}` },
    ...(ring === undefined ? {} : { zmq: { ...plain['zmq'], settlement_port: ringPort - 2042 + 1557 } }),
    symbols: (plain['symbols'] as unknown as unknown[]).slice(0, shardCount),
    batch: { ...plain['batch'], max_messages: batchMessages, ...(maxWaitMs === undefined ? {} : { max_wait_ms: maxWaitMs }) },
    // A job of `batch` messages stays one LOGGED BATCH, like the raw path's batches.
    settler: { ...plain['settler'], batch_statements_max: Math.max(600, batchMessages * 12) },
    reconciliation: { ...plain['reconciliation'], enabled: false },
    log_level: 'warn',
    data_dir: path.join(base.data_dir, 'bench'),
  });
}

/** How often a settler process publishes its metrics (startSettler's default heartbeat), ms. */
const SETTLER_HEARTBEAT_MS = 5_000;

async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

async function waitFor(what: string, predicate: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface StepResult {
  label: string;
  offeredPerS: number;
  achievedOfferPerS: number;
  settledPerS: number;
  tradesShare: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  queueDepthMax: number;
  /** The step's messages: stream positions [streamFrom, streamTo). */
  streamFrom: number;
  streamTo: number;
  cpuCores: Record<string, number>;
  /** Cassandra's GC pauses during the step (local stack only). */
  cassandraGc: GcPauses | undefined;
  stages: StageBreakdown;
  /** Per shard, from the settlers' own histograms: batches, mean batch write and job time. */
  shards: ShardTimings;
}

/** A closed-loop step and the raw ceiling measured right after it on the same messages. */
interface RatioPair {
  step: string;
  serviceMessagesPerS: number;
  raw: RawCeilingResult;
  rawCpuCores: Record<string, number>;
  /** serviceMessagesPerS / raw.messagesPerS. */
  ratio: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const benchStarted = Date.now();
  if (nodeCount === 3) {
    say(`starting a private three-node ring on port ${ringPort} in ${path.relative(ROOT, benchRingDir(ringPort))} (idempotent)`);
    ring = await startRing(benchRingDir(ringPort), ringPort, say);
  } else {
    say('starting the local stack (idempotent)');
    const stack = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/stack/main.ts'), 'up'], { cwd: ROOT, stdio: 'inherit' });
    if (stack.status !== 0) throw new Error('the local stack did not start');
  }

  const rawConfig = benchConfig('bench_raw', '{benchraw}');
  const config = benchConfig('bench_svc', '{bench}');
  const catalog = new MarketCatalog(config);
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  const createKeyspace = async (keyspace: string): Promise<void> => {
    await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace, replicationFactor: ring?.replicationFactor ?? 1, symbols: config.symbols.map((s) => s.name) });
  };
  await createKeyspace('bench_svc');
  /**
   * A fresh raw keyspace and a writer on it; `drop` removes both. Each gets a name of its own:
   * Cassandra 2.1 keeps a statement prepared on a dropped table, so the admin client's migration
   * insert into a re-created keyspace of the same name went to the dropped table (on a ring, a
   * write timeout every time).
   */
  let rawKeyspaces = 0;
  const openRawKeyspace = async (): Promise<{ client: cassandra.Client; writer: SettlementWriter; drop: () => Promise<void> }> => {
    const keyspace = `bench_raw_${++rawKeyspaces}`;
    await createKeyspace(keyspace);
    const client = createScyllaClient({ ...scyllaOptionsFromConfig(rawConfig), keyspace });
    await client.connect();
    const writer = new SettlementWriter({ client, keyspace, symbols: rawConfig.symbols.map((s) => s.name), consistency: rawConfig.scylladb.consistency, feeAccountUserId: rawConfig.fee_account_user_id });
    return {
      client,
      writer,
      // Dropped when done: Cassandra stops compacting rows nobody reads, and whatever is measured
      // next runs on a machine as quiet as the raw path did.
      drop: async () => {
        await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
        await client.shutdown();
      },
    };
  };

  // 1. Raw ceiling.
  // The bench's data_dir is the stack's plus /bench.
  // On a ring, "cassandra" is node 1 (it waits for quiet and is pinned); nodes 2 and 3 are metered as cassandra-2/3.
  const cassandraPid = ring !== undefined ? ring.pidOf(1) : findCassandraPid(path.join(config.data_dir, '..'));
  const otherNodes = (): Record<string, number | undefined> => (ring === undefined ? {} : { 'cassandra-2': ring.pidOf(2), 'cassandra-3': ring.pidOf(3) });
  const gcLog = ring !== undefined ? undefined : localGcLog(path.join(config.data_dir, '..'));
  // --pin: Cassandra on CPU 0; this process (and so the apps it starts) and Redis on CPU 1.
  const pinned: number[] = [];
  const pinToOtherCores = (pid: number): void => {
    pinProcess(pid, '1');
    pinned.push(pid);
  };
  if (args.pin) {
    if (cassandraPid === undefined) throw new Error('--pin needs the local Cassandra (its pid was not found)');
    pinProcess(cassandraPid, '0');
    pinned.push(cassandraPid);
    // Put back at the end, whatever the outcome: Cassandra and Redis outlive the bench.
    process.once('exit', () => {
      for (const pid of pinned) {
        try {
          pinProcess(pid, allCpus());
        } catch {
          // Gone already.
        }
      }
    });
    process.once('SIGINT', () => process.exit(130));
    pinToOtherCores(process.pid);
    say('pinned: Cassandra on CPU 0; Redis, the apps and the bench on CPU 1');
  }
  // The closed-loop step's bound on messages sent and not settled; the raw ceilings write the
  // stream in order within the same bound.
  const unsettledMax = closedLoopWindowMessages(batchMessages, shardCount + 1);
  const settle = async (what: string): Promise<void> => {
    // A ring node gossips and sends hints all the time: on a loaded machine it may never fall
    // under 0.15 cores, so a ring bench waits at most 20 s per phase.
    const waitedMs = await waitUntilQuiet(cassandraPid, 0.15, 3, ring === undefined ? 90_000 : 20_000);
    say(`${what}: waited ${Math.round(waitedMs / 1000)} s for Cassandra to finish compacting`);
  };
  /**
   * The raw ceiling on `messages`, of which the first `warmUpCount` are written untimed first.
   * In a function of its own, so its stream and statements (hundreds of MB) can be collected
   * before whatever is measured next.
   */
  const measureRawCeiling = async (messages: SettlementMessage[], warmUpCount: number, what: string): Promise<{ raw: RawCeilingResult; rawCpuCores: Record<string, number> }> => {
    const { client: rawClient, writer: rawWriter, drop } = await openRawKeyspace();
    const plans = planRawBatches(rawWriter, messages, batchMessages, rawChunking(rawConfig), warmUpCount);
    // The statements hold what is needed; the messages can be collected meanwhile.
    messages.length = 0;
    const rawCpu = new CpuMeter(() => ({ cassandra: cassandraPid, ...otherNodes(), bench: process.pid }));
    await settle(`before the ${what}`);
    say(`${what}: writing for up to ${rawSeconds} s`);
    const result = await runRawCeiling({ client: rawClient, writer: rawWriter, plans, durationMs: rawSeconds * 1000, unsettledMax, onTimedStart: () => rawCpu.start() });
    const cpuCores = rawCpu.stop();
    await drop();
    return { raw: result, rawCpuCores: cpuCores };
  };
  const rawMessageCount = warmUpMessages + 14_000 * rawSeconds;
  /** The start-of-run ceiling's stream: the same seed as the service's, so its warm-up is the service's warm-up. */
  const rawStream = (): SettlementMessage[] => {
    const rawSimulator = createSimulator({ market: marketFromConfig(rawConfig), messages: rawMessageCount, users: userCount, seed });
    return sequencedMessages(rawSimulator, new MarketCatalog(rawConfig), rawMessageCount);
  };
  const measureRaw = (): Promise<{ raw: RawCeilingResult; rawCpuCores: Record<string, number> }> => {
    say(`raw ceiling: generating ${rawMessageCount} messages for ${userCount} users (${warmUpMessages} warm-up)`);
    return measureRawCeiling(rawStream(), warmUpMessages, 'raw ceiling');
  };
  const { raw, rawCpuCores } = await measureRaw();
  const measureRawLatency = async (messages: SettlementMessage[], ratePerS: number): Promise<RawLatencyResult & { cpuCores: Record<string, number> }> => {
    const { writer: rawWriter, drop } = await openRawKeyspace();
    const options = { writer: rawWriter, ratePerS, batchMessagesMax: batchMessages, chunking: rawChunking(rawConfig) };
    try {
      // Untimed: prepares the statements (a first batch would otherwise carry that round trip).
      await runRawLatency({ ...options, messages: messages.slice(0, 200) });
      const rawCpu = new CpuMeter(() => ({ cassandra: cassandraPid, bench: process.pid }));
      rawCpu.start();
      const result = await runRawLatency({ ...options, messages });
      return { ...result, cpuCores: rawCpu.stop() };
    } finally {
      await drop();
    }
  };
  await settle('after the raw ceiling');
  say(`raw ceiling: ${Math.round(raw.messagesPerS)} messages/s (${Math.round(raw.tradesPerS)} trades/s), ${raw.batches} batches of ~${round(raw.statementsPerBatchAvg, 0)} statements`);

  // 2. The service.
  const offered = rateSpecs.map((r) => Math.round(absoluteRates ? r : r * raw.messagesPerS));
  // The closed-loop step cannot settle faster than the raw path writes (if it did, it would end early).
  const closedLoopMessages = Math.ceil(raw.messagesPerS) * stepSeconds;
  const halfStepUpperBound = Math.ceil(Math.max(...offered, raw.messagesPerS) * 0.5) * halfStepSeconds;
  const totalMessages = warmUpMessages + offered.reduce((sum, r) => sum + r * stepSeconds, 0) + pairCount * closedLoopMessages + halfStepUpperBound;
  say(`service: generating ${totalMessages} messages`);
  const simulator: Simulator = createSimulator({ market: marketFromConfig(config), messages: totalMessages, users: userCount, seed });
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
  await clearPrefix(redis, config.redis.prefix);
  const configFile = writeConfigYaml(config, path.join(config.data_dir, 'bench-config.yaml'));
  const env = { ...process.env, SETTLEMENT_CONFIG: configFile, LOG_LEVEL: 'warn' };
  const logDir = path.join(config.data_dir, 'logs', new Date(benchStarted).toISOString().replace(/[:.]/g, '-'));
  const ingestor = new ChildApp({ app: 'ingestor', name: 'ingestor', env, logDir }).start();
  const settlers = Array.from({ length: settlerCount }, (_, i) => new ChildApp({ app: 'settler', name: `settler-${i + 1}`, env, logDir }).start());
  const apps = [ingestor, ...settlers];
  const tracker = new CompletionTracker(simulator);
  const queueNames = catalog.shards.map(settlementQueueName);
  const queues = queueNames.map((name) => new Queue(name, { connection: { url: config.redis.url }, prefix: config.redis.prefix }));
  const client = createScyllaClient(scyllaOptionsFromConfig(config));
  const balances = new BalanceRepository(client, config.scylladb.keyspace);
  const redisPid = Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1]);
  if (args.pin && Number.isInteger(redisPid)) pinToOtherCores(redisPid);
  const cpu = new CpuMeter(() => ({
    cassandra: cassandraPid,
    ...otherNodes(),
    redis: Number.isInteger(redisPid) ? redisPid : undefined,
    ingestor: ingestor.pid,
    ...Object.fromEntries(settlers.map((s, i) => [`settler-${i + 1}`, s.pid])),
    'bench+simulator': process.pid,
  }));

  const results: StepResult[] = [];
  let underLoad: BalanceQueryResult | undefined;
  let idle: BalanceQueryResult | undefined;
  let checks: { balancesChecked: number; mismatches: string[]; conservation: boolean } | undefined;
  let halfSlice: { from: number; to: number; ratePerS: number } | undefined;
  let maxStep: StepResult | undefined;
  const pairs: RatioPair[] = [];
  try {
    await tracker.listen(queueNames, { url: config.redis.url }, config.redis.prefix);
    await waitFor('ingestor and settler heartbeats', async () => {
      const keys = await redis.keys(`${config.redis.prefix}:heartbeat:*`);
      return keys.some((k) => k.includes(':ingestor:')) && keys.filter((k) => k.includes(':settler:')).length >= settlerCount;
    }, 60_000);
    await client.connect();
    for (const app of apps) if (!app.running) throw new Error(`${app.options.name} exited at start; see ${logDir}`);

    let sentSoFar = 0;
    /**
     * One step: `count` messages at `rate` (0: unpaced). With `closedLoop`, unpaced but never
     * more than `unsettledMax` messages sent and not yet settled, for `closedLoop.durationMs`.
     */
    const runStep = async (
      label: string,
      rate: number,
      count: number,
      during?: (signal: AbortSignal) => Promise<void>,
      closedLoop?: { unsettledMax: number; durationMs: number },
    ): Promise<StepResult> => {
      const from = sentSoFar;
      let depthMax = 0;
      const depthTimer = setInterval(() => {
        void Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')))
          .then((counts) => {
            const depth = counts.reduce((s, c) => s + Object.values(c).reduce((a, b) => a + b, 0), 0);
            depthMax = Math.max(depthMax, depth);
          })
          .catch(() => undefined);
      }, 500);
      // The load generator's own garbage is collected now, not in the middle of a measured step.
      collectGarbage();
      const timingsBefore = await readSettlerTimings(redis, config.redis.prefix);
      const abort = new AbortController();
      const sideTask = during?.(abort.signal);
      cpu.start();
      const startedMs = Date.now();
      const report = await sendPaced(count, (i, nowMs) => {
        tracker.markSent(from + i, nowMs);
        return simulator.frameAt(from + i, nowMs);
      }, {
        mode: 'push',
        endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`,
        ratePerSecond: rate,
        lingerMs: 60_000,
        // Every earlier message is settled when a step starts (see below), so what is unsettled
        // now is this step's: sent minus settled since.
        ...(closedLoop === undefined ? {} : { window: (sent: number) => closedLoop.unsettledMax - (from + sent - tracker.settled), signal: AbortSignal.timeout(closedLoop.durationMs) }),
      });
      const endedMs = Date.now();
      const cpuCores = cpu.stop();
      abort.abort();
      await sideTask;
      sentSoFar += report.sent;
      // Wait for this step's messages to settle before the next one, so steps do not mix.
      await waitFor(`step ${label} to settle`, () => tracker.unsettledBefore(sentSoFar) === 0, 180_000);
      clearInterval(depthTimer);
      // The settlers publish their histograms with each heartbeat: wait for one after the step.
      await new Promise((resolve) => setTimeout(resolve, SETTLER_HEARTBEAT_MS + 200));
      const shards = timingsBetween(timingsBefore, await readSettlerTimings(redis, config.redis.prefix));
      const warmupMs = Math.min(2000, (endedMs - startedMs) / 4);
      // Throughput: completions while the step was being offered (after a warm-up), or, when
      // a backlog built up, while it drained at full speed.
      const windowStart = startedMs + warmupMs;
      const settledInWindow = tracker.settledBetween(windowStart, endedMs);
      const latency = tracker.latency(from, sentSoFar).summary();
      const stages = tracker.stages(from, sentSoFar);
      const trades = simulator.messages.slice(from, sentSoFar).filter((m) => m.kind === 'trade').length;
      const result: StepResult = {
        label,
        offeredPerS: rate,
        achievedOfferPerS: Math.round(report.achievedRatePerSecond),
        settledPerS: Math.round((settledInWindow * 1000) / (endedMs - windowStart)),
        tradesShare: round(trades / Math.max(1, report.sent), 3),
        p50Ms: latency.p50Ms,
        p99Ms: latency.p99Ms,
        maxMs: latency.maxMs,
        queueDepthMax: depthMax,
        streamFrom: from,
        streamTo: sentSoFar,
        cpuCores,
        cassandraGc: gcLog === undefined ? undefined : gcPausesBetween(gcLog, startedMs, endedMs),
        stages,
        shards,
      };
      say(`step ${label}: offered ${rate}/s (achieved ${result.achievedOfferPerS}/s), settled ${result.settledPerS}/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max queue depth ${depthMax}`);
      return result;
    };

    if (warmUpMessages > 0) {
      say(`warm-up: ${warmUpMessages} messages, as fast as they settle`);
      await runStep('warm-up', 0, warmUpMessages);
    }
    for (const [i, rate] of offered.entries()) {
      results.push(await runStep(absoluteRates ? `${rate}/s` : `${rateSpecs[i]}x raw`, rate, rate * stepSeconds));
    }
    // The open-loop steps past saturation keep the ingestor and the load generator busy with
    // messages that only queue up, which takes CPU from the settling. A closed-loop step offers
    // exactly what settles: unpaced, with a bounded number of messages in flight
    // (unsettledMax), the way a sustained maximum is measured.
    //
    // Each is followed by the raw ceiling on its very messages, right after it (the service
    // idle), so Cassandra holds what that step left, as it did for the service: the stream
    // starts funding-heavy (deposits) and its share of trades, which write more rows, grows
    // along it, so the first ceiling (on the messages right after the warm-up) is for cheaper
    // messages than the ones the service settles later in the run.
    // Cassandra is let settle before each closed-loop step as before each raw ceiling: the
    // open-loop steps past saturation leave it compacting their backlog (a first closed-loop step
    // run straight after them settled 0.63 of its ceiling, the next two 0.79 and 0.83).
    for (let pair = 1; pair <= pairCount; pair++) {
      await settle(`before closed-loop step ${pair}`);
      const step = await runStep(pair === 1 ? 'max (closed loop)' : `max (closed loop) ${pair}`, 0, closedLoopMessages, undefined, { unsettledMax, durationMs: stepSeconds * 1000 });
      results.push(step);
      if (step.streamTo <= step.streamFrom) continue;
      const warmFrom = Math.max(0, step.streamFrom - warmUpMessages);
      say(`raw ceiling on the ${step.label} step's ${step.streamTo - step.streamFrom} messages (after ${step.streamFrom - warmFrom} untimed)`);
      try {
        const same = await measureRawCeiling(sequencedMessages(simulator, catalog, step.streamTo, warmFrom), step.streamFrom - warmFrom, `raw ceiling on the ${step.label} step's messages`);
        const ratio = step.settledPerS / same.raw.messagesPerS;
        pairs.push({ step: step.label, serviceMessagesPerS: step.settledPerS, raw: same.raw, rawCpuCores: same.rawCpuCores, ratio: round(ratio, 3) });
        say(`raw ceiling on the same messages: ${Math.round(same.raw.messagesPerS)} messages/s (${Math.round(same.raw.tradesPerS)} trades/s): ratio ${round(ratio, 3)}`);
      } catch (error) {
        say(`raw ceiling on the same messages failed, reported as missing: ${(error as Error).message}`);
      }
    }
    maxStep = results.reduce((a, b) => (b.settledPerS > a.settledPerS ? b : a));
    // The steps past saturation leave Cassandra compacting their backlog for a while; the
    // latency target is about a steady half-loaded system, not that aftermath.
    await settle('before the half-max step');
    const halfRate = Math.round(maxStep.settledPerS / 2);
    const halfCount = Math.min(halfRate * halfStepSeconds, totalMessages - sentSoFar);
    const users = simulator.stream.users;
    halfSlice = { from: sentSoFar, to: sentSoFar + halfCount, ratePerS: halfRate };
    results.push(
      await runStep('half max', halfRate, halfCount, async (signal) => {
        underLoad = await measureBalanceQueries({ client, keyspace: config.scylladb.keyspace, repository: balances, users, durationMs: halfStepSeconds * 1000, pairsMax: 1_000_000, pairsPerS: queryPairsPerS, signal });
      }),
    );
    // The rest of the stream, so the final balances can be checked against the expectation.
    if (sentSoFar < totalMessages) await runStep('rest', 0, totalMessages - sentSoFar);
    // Idle means idle: not while Cassandra still compacts what the steps wrote.
    await settle('before the idle balance queries');
    idle = await measureBalanceQueries({ client, keyspace: config.scylladb.keyspace, repository: balances, users, durationMs: 8_000, pairsMax: 3_000 });

    // 3. Checks: every balance as the simulator expects, and conservation per asset.
    const expected = simulator.expected();
    const result = await checkBalances(balances, expected);
    checks = { balancesChecked: result.checked, mismatches: result.mismatches.slice(0, 20), conservation: result.conservationBroken.length === 0 };
  } finally {
    await Promise.allSettled(apps.map((a) => a.stop('SIGTERM')));
    apps.forEach((a) => a.close());
    await tracker.close();
    await Promise.allSettled(queues.map((q) => q.close()));
    await redis.quit();
    await client.shutdown();
  }

  // 4. The latency reference: the half-max step's messages at its rate, through the leanest
  // in-process pipeline, with the service stopped (see raw-latency.ts).
  let rawLatency: (RawLatencyResult & { cpuCores: Record<string, number> }) | undefined;
  if (halfSlice !== undefined) {
    await settle('before the raw latency reference');
    say(`raw latency reference: the half-max step's ${halfSlice.to - halfSlice.from} messages at ${halfSlice.ratePerS}/s, in-process`);
    try {
      rawLatency = await measureRawLatency(sequencedMessages(simulator, catalog, halfSlice.to, halfSlice.from), halfSlice.ratePerS);
    } catch (error) {
      // A reference that failed must not cost the run it is a reference for.
      say(`raw latency reference failed, reported as missing: ${(error as Error).message}`);
    }
  }

  // The admin connection made the keyspaces, the raw latency reference's last.
  await admin.shutdown();

  // 5. The cost of database-level durability, last, so its second Cassandra disturbs nothing
  // measured before; on the start-of-run ceiling's messages.
  let durability: DurabilityCeilingResult | undefined;
  if (durabilityCeilingOn) {
    say(`durability ceiling: a private Cassandra on port ${DURABILITY_NODE_PORT}, periodic then batch commit log`);
    try {
      durability = await measureDurabilityCeilings({
        config: rawConfig,
        messages: rawStream,
        warmUpCount: warmUpMessages,
        batchMessages,
        unsettledMax,
        durationMs: rawSeconds * 1000,
        heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 1024),
        dataDir: config.data_dir,
        say,
      });
    } catch (error) {
      // A reference that failed must not cost the run it is a reference for.
      say(`durability ceiling failed, reported as missing: ${(error as Error).message}`);
    }
  }

  // Report.
  if (maxStep === undefined) throw new Error('no step was measured');
  const half = results.find((r) => r.label === 'half max')!;
  // The target ratio: the median of the closed-loop steps' ratios to the ceiling on their own
  // messages; without any, the best step against the first ceiling.
  const ratioToFirstRaw = maxStep.settledPerS / raw.messagesPerS;
  const ratio = pairs.length === 0 ? ratioToFirstRaw : median(pairs.map((p) => p.ratio));
  const targets = {
    ratioAtLeast075: ratio >= 0.75,
    ratioAim090: ratio >= 0.9,
    tradesPerSAtLeast5000: maxStep.settledPerS * maxStep.tradesShare >= 5000,
    p99HalfMaxUnder50Ms: half.p99Ms < 50,
    balanceIdleP99Under5Ms: (idle?.service.p99Ms ?? Infinity) < 5,
    balanceUnderLoadWithin12xRaw: (underLoad?.service.p99Ms ?? Infinity) <= 1.2 * (underLoad?.raw.p99Ms ?? 0),
  };
  const summary = {
    startedAt: new Date(benchStarted).toISOString(),
    machine: { cores: (await import('node:os')).cpus().length, node: process.version },
    ...(ring === undefined ? {} : { ring: { hosts: ring.hosts, replicationFactor: ring.replicationFactor, consistency: config.scylladb.consistency, heapMb: ring.state.nodes[0]?.heapMb } }),
    settings: { nodes: nodeCount, pinned: args.pin, stepSeconds, halfStepSeconds, rawSeconds, queryPairsPerS, shards: shardCount + 1, symbolShards: shardCount, settlers: settlerCount, batchMessages, maxWaitMs: config.batch.max_wait_ms, users: userCount, seed },
    raw: { ...raw, cpuCores: rawCpuCores },
    /**
     * The raw ceiling with the periodic commit log (Cassandra's default, as the stack runs) and
     * with commitlog_sync: batch (2 ms), on a private second node: the cost of database-level
     * durability. Absent with --durability-ceiling off.
     */
    durabilityCeiling: durability === undefined ? (durabilityCeilingOn ? 'failed' : 'off') : durability,
    ratioPairs: pairs.map((p) => ({ step: p.step, serviceMessagesPerS: p.serviceMessagesPerS, ratio: p.ratio, raw: { ...p.raw, cpuCores: p.rawCpuCores } })),
    steps: results,
    maxSettledMessagesPerS: maxStep.settledPerS,
    maxSettledTradesPerS: Math.round(maxStep.settledPerS * maxStep.tradesShare),
    serviceToRawRatio: round(ratio, 3),
    serviceToFirstRawRatio: round(ratioToFirstRaw, 3),
    halfMaxLatency: { p50Ms: half.p50Ms, p99Ms: half.p99Ms, maxMs: half.maxMs, rawReference: rawLatency },
    balanceQueries: { idle, underLoad },
    checks,
    targets,
  };
  const stamp = new Date(benchStarted).toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const kind = ring === undefined ? 'bench' : 'bench-ring';
  const jsonFile = path.join(resultsDir, `${kind}-${stamp}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
  const points: ChartPoint[] = results
    .filter((r) => r.label !== 'rest')
    // The closed-loop step offers what settles: plotted at the rate it sent.
    .map((r) => ({ offeredPerS: r.offeredPerS > 0 ? r.offeredPerS : r.achievedOfferPerS, settledPerS: r.settledPerS, p99Ms: r.p99Ms }))
    .sort((a, b) => a.offeredPerS - b.offeredPerS);
  const svg = renderChart(points, raw.messagesPerS, `settlement service vs raw LOGGED BATCH (${settlerCount} settlers, ${shardCount + 1} shards, batch ${batchMessages})`);
  writeFileSync(path.join(resultsDir, `${kind}-${stamp}.svg`), svg);
  writeFileSync(path.join(resultsDir, ring === undefined ? 'latest.svg' : 'latest-ring.svg'), svg);
  writeFileSync(path.join(resultsDir, ring === undefined ? 'latest.json' : 'latest-ring.json'), readFileSync(jsonFile));

  const rawLine = (what: string, r: RawCeilingResult, cores: Record<string, number>): string =>
    `${what}: ${Math.round(r.messagesPerS)} msgs/s (${Math.round(r.tradesPerS)} trades/s, ${round(100 * r.tradesShare, 0)} % trades), Cassandra ${cores['cassandra'] ?? '?'} cores, bench ${cores['bench'] ?? '?'}\n`;
  process.stdout.write(`\n${rawLine('Raw LOGGED BATCH ceiling (start of run, sets the offered rates)', raw, rawCpuCores)}`);
  for (const p of pairs) process.stdout.write(rawLine(`Raw LOGGED BATCH ceiling on the ${p.step} step's messages`, p.raw, p.rawCpuCores));
  process.stdout.write('\n');
  if (durability !== undefined) {
    process.stdout.write(
      formatTable(
        ['durability cost: raw ceiling', 'commit log', 'msgs/s', 'trades/s', 'batches', 'cassandra cores', 'vs periodic'],
        [
          ['local stack (start of run)', 'periodic 10 s', Math.round(raw.messagesPerS), Math.round(raw.tradesPerS), raw.batches, rawCpuCores['cassandra'] ?? NaN, ''],
          ...[durability.periodic, durability.batch].map((d) => [
            `private node :${durability!.node.port}`,
            d.commitlog === 'periodic' ? 'periodic 10 s' : 'batch 2 ms',
            Math.round(d.raw.messagesPerS), Math.round(d.raw.tradesPerS), d.raw.batches, d.cpuCores['cassandra'] ?? NaN,
            round(d.raw.messagesPerS / durability!.periodic.raw.messagesPerS, 3),
          ]),
        ],
      ) + '\n(the same messages; on the private node each mode on a fresh keyspace after the same untimed warm-up)\n\n',
    );
  } else if (durabilityCeilingOn) process.stdout.write('durability cost: the durability ceiling failed (see the log)\n\n');
  process.stdout.write(
    formatTable(
      ['step', 'offered/s', 'sent/s', 'settled/s', 'p50 ms', 'p99 ms', 'max ms', 'queue max', 'gc max·sum ms', 'cassandra', 'settlers', 'ingestor', 'redis', 'bench+sim'],
      results.map((r) => [
        r.label, r.offeredPerS, r.achievedOfferPerS, r.settledPerS, r.p50Ms, r.p99Ms, r.maxMs, r.queueDepthMax,
        r.cassandraGc === undefined ? 'n/a' : `${r.cassandraGc.maxMs}·${r.cassandraGc.totalMs}`,
        r.cpuCores['cassandra'] ?? NaN,
        round(Object.entries(r.cpuCores).filter(([k]) => k.startsWith('settler')).reduce((s, [, v]) => s + v, 0)),
        r.cpuCores['ingestor'] ?? NaN, r.cpuCores['redis'] ?? NaN, r.cpuCores['bench+simulator'] ?? NaN,
      ]),
    ) + '\n\n',
  );
  process.stdout.write(
    formatTable(
      ['step', 'jobs', 'msgs/job', 'ingest p50', 'ingest p99', 'queued p50', 'queued p99', 'settle p50', 'settle p99'],
      results.map((r) => [
        r.label, r.stages.jobs, r.stages.messagesPerJob, r.stages.ingest.p50Ms, r.stages.ingest.p99Ms,
        r.stages.queued.p50Ms, r.stages.queued.p99Ms, r.stages.settle.p50Ms, r.stages.settle.p99Ms,
      ]),
    ) + '\n(latency per message by stage, ms: ingest = sent → job added, queued = added → taken by a settler, settle = taken → completed)\n',
  );
  // Where the half-max step's tail sits: its slowest seconds (by send time).
  const slowest = [...half.stages.bySecond].sort((a, b) => b.maxMs - a.maxMs).slice(0, 5).sort((a, b) => a.second - b.second);
  process.stdout.write(`half max, slowest seconds of ${half.stages.bySecond.length} (second: p99 · max ms): ${slowest.map((s) => `${s.second}: ${s.p99Ms} · ${s.maxMs}`).join(', ')}\n\n`);
  const shardNames = [...new Set(results.flatMap((r) => Object.keys(r.shards)))].sort();
  process.stdout.write(
    formatTable(
      ['step', ...shardNames.map((shard) => `${shard} batches · write/job ms`)],
      results.map((r) => [r.label, ...shardNames.map((shard) => {
        const t = r.shards[shard];
        return t === undefined ? '' : `${t.batches} · ${t.writeMeanMs}/${t.jobMeanMs}`;
      })]),
    ) + '\n(per shard, from the settlers\' histograms: LOGGED BATCHes written, mean batch write and mean job time, ms)\n\n',
  );
  process.stdout.write(
    formatTable(
      ['balance query', 'service p50', 'service p99', 'raw p50', 'raw p99', 'count'],
      [
        ['idle', idle?.service.p50Ms ?? NaN, idle?.service.p99Ms ?? NaN, idle?.raw.p50Ms ?? NaN, idle?.raw.p99Ms ?? NaN, idle?.service.count ?? 0],
        ['under load (half max)', underLoad?.service.p50Ms ?? NaN, underLoad?.service.p99Ms ?? NaN, underLoad?.raw.p50Ms ?? NaN, underLoad?.raw.p99Ms ?? NaN, underLoad?.service.count ?? 0],
      ],
    ) + '\n\n',
  );
  if (rawLatency !== undefined) {
    process.stdout.write(
      formatTable(
        ['half max latency', 'rate/s', 'p50 ms', 'p99 ms', 'max ms', 'msgs/batch', 'batch write p50·p99 ms', 'cassandra cores', 'other cores'],
        [
          ['service (ZMQ sent → settled)', half.offeredPerS, half.p50Ms, half.p99Ms, half.maxMs, half.stages.messagesPerJob, '', half.cpuCores['cassandra'] ?? NaN,
            round(Object.entries(half.cpuCores).filter(([k]) => k !== 'cassandra').reduce((sum, [, v]) => sum + v, 0))],
          ['raw pipeline (due → acknowledged)', rawLatency.ratePerS, rawLatency.p50Ms, rawLatency.p99Ms, rawLatency.maxMs, rawLatency.messagesPerBatch, `${rawLatency.batchWrite.p50Ms}·${rawLatency.batchWrite.p99Ms}`,
            rawLatency.cpuCores['cassandra'] ?? NaN, rawLatency.cpuCores['bench'] ?? NaN],
        ],
      ) + '\n(raw pipeline: the same messages at the same rate, settled in-process with one LOGGED BATCH in flight per shard and the service stopped)\n\n',
    );
  }
  process.stdout.write(
    `service / raw = ${round(ratio, 3)} (` +
      `${pairs.length === 0 ? 'best step against the start-of-run ceiling' : `median of ${pairs.length} closed-loop steps against the raw ceiling on their messages: ${pairs.map((p) => p.ratio).join(', ')}`}` +
      `; max ${maxStep.settledPerS} msgs/s, ${summary.maxSettledTradesPerS} trades/s, ${round(100 * maxStep.tradesShare, 0)} % trades; against the start-of-run ceiling ${round(ratioToFirstRaw, 3)})\n`,
  );
  process.stdout.write(`checks: ${checks?.balancesChecked ?? 0} balances, ${checks?.mismatches.length ?? 'n/a'} mismatches, conservation ${checks?.conservation ? 'holds' : 'BROKEN'}\n`);
  process.stdout.write(`targets: ${Object.entries(targets).map(([k, v]) => `${k}=${v ? 'yes' : 'NO'}`).join(' ')}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, jsonFile)} and bench/results/latest.svg (${Math.round((Date.now() - benchStarted) / 1000)} s)\n`);
  if (!checks || checks.mismatches.length > 0 || !checks.conservation) {
    process.stderr.write(`[bench] FAILED: settled balances differ from the expectation\n${checks?.mismatches.join('\n') ?? ''}\n`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] error: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
