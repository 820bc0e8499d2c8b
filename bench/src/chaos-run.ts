/**
 * The chaos run: a simulated stream settled by the real processes while faults are injected at
 * random moments (from a seed): SIGKILL of a settler, of the ingestor, of the reconciler; Redis
 * killed and restarted; Cassandra stopped (SIGTERM) and restarted; Cassandra killed (kill -9,
 * at least three times per run, spread over it) and restarted; a settler paused longer than its
 * lock and its lease; plus duplicated, reordered and malformed messages in the stream. Then it
 * checks that every balance equals the simulator's expectation, conservation holds, every trade
 * is settled exactly once, every malformed message is in the dead letter and nothing valid is,
 * no settlement job failed, no process died by itself or hung on shutdown, and a full
 * reconciliation finds 0 errors.
 *
 * It runs on a private Redis and a private Cassandra, so it can restart them freely. By default
 * both are configured as users run them (DESIGN.md invariant 8): Cassandra with the periodic
 * commit log of `npm start` / `npm run stack:up` (Cassandra's default, synced every 10 s, so a
 * kill -9 loses the last acknowledged writes) and Redis without persistence, like the machine's
 * (so a restart comes back empty). `commitlog: 'batch'` is the hardened variant: the commit log
 * synced before each acknowledgement and Redis with an append-only file fsynced on every write.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type cassandra from 'cassandra-driver';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { DEAD_LETTER_QUEUE, FUNDING_SHARD, MarketCatalog } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue, heartbeatPattern } from '@settlement/runtime';
import { BalanceRepository, createScyllaClient, migrate, scyllaOptionsFromConfig, u64FromCql, UNROUTED_SHARD } from '@settlement/scylla';
import { reconcileOnce } from '@settlement/reconciler';
import { createSimulator, marketFromConfig, Rng, sendPaced, type Simulator, type SimulatorOptions } from '@settlement/simulator';
import { ChildApp, ROOT, readPid, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions, type LocalRing } from '@settlement/tools';
import { clockSkewEnv, ringScyllaSection, SettledRate, startRing, type NodeAbsence, type RingThroughput } from './chaos-ring.js';
import { checkBalances } from './check-balances.js';
import { writeConfigYaml } from './config-file.js';
import { cassandraYamlOverrides, type CommitlogMode } from './commitlog.js';
import { PrivateRedis, type RedisPersistence } from './private-redis.js';

export { COMMITLOG_MODES, cassandraYamlOverrides, type CommitlogMode } from './commitlog.js';

export const FAULT_KINDS = ['kill-settler', 'kill-ingestor', 'kill-reconciler', 'restart-redis', 'restart-cassandra', 'kill-cassandra', 'pause-settler'] as const;
/** `pause-node`: SIGSTOP of one ring node past the request timeout (ring only, chaos-ring.ts). */
export type FaultKind = (typeof FAULT_KINDS)[number] | 'pause-node';
/** On a ring: kill-cassandra is a kill -9 of one node; no clean restart of the only node; a node paused. */
export const RING_FAULT_KINDS: readonly FaultKind[] = [...FAULT_KINDS.filter((k) => k !== 'restart-cassandra'), 'pause-node'];

/** kill -9 of Cassandra per run, at least (spread over the stream). */
export const DEFAULT_CASSANDRA_KILLS = 3;

export interface ChaosOptions {
  /** Trades in the stream, exactly; funding events (deposits, locks, …) come on top. */
  readonly trades: number;
  readonly faults: number;
  readonly seed: number;
  /** Offered rate, messages/s. */
  readonly ratePerSecond: number;
  readonly users: number;
  readonly settlers: number;
  /**
   * Ports of the run's own: Redis on portBase, the ingestor's PULL on +1, the replay endpoint on
   * +2, Cassandra's CQL on +3 (its storage ports are derived from that, 2 042 lower).
   */
  readonly portBase: number;
  /** Fault kinds to use (default all); each is used at least once when faults ≥ kinds. */
  readonly kinds?: readonly FaultKind[];
  /** The private Cassandra's commit log. Default `periodic`, as users run it. */
  readonly commitlog?: CommitlogMode;
  /** The private Redis's persistence. Default: `none` with a periodic commit log, `aof-always` with `batch`. */
  readonly redisPersistence?: RedisPersistence;
  /** kill -9 of Cassandra in the run, at least; default 3 (when `kinds` has kill-cassandra). */
  readonly cassandraKills?: number;
  /** Called as each fault is done (the run also logs it). */
  readonly onFault?: (fault: FaultRecord) => void;
  readonly logger: Logger;
  /** Where logs and the private stack's files go; emptied at the start. */
  readonly workDir: string;
  /**
   * Run on a private local three-node ring on `port` (CQL; storage ports port − 2042/2041) at RF=3
   * and local_quorum instead of the single node (chaos-ring.ts); its folder is workDir/ring.
   */
  readonly ring?: { readonly port: number };
  /** Wall-clock offsets of settler 1, 2, … in seconds (libfaketime); the others keep the machine's clock. */
  readonly settlerClockOffsetsS?: readonly number[];
  /** Longest wait for every shard to settle after the last fault, ms. Default 600 000. */
  readonly settleTimeoutMs?: number;
  /** The wait ends early when no shard's watermark moved for this long, ms. Default 120 000. */
  readonly stallTimeoutMs?: number;
}

export interface FaultRecord {
  /** Since the stream started, ms. */
  readonly atMs: number;
  readonly kind: FaultKind;
  readonly target: string;
  readonly durationMs: number;
  /**
   * What the fault did to the stores: for a Cassandra fault, each shard's stored watermark just
   * before and right after (storage going back shows as a lower value after); for Redis, whether
   * it came back empty.
   */
  readonly detail?: string;
}

export interface ChaosCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ProcessExit {
  readonly name: string;
  /** Since the stream started, ms. */
  readonly atMs: number;
  readonly code: number | null;
}

export interface ChaosReport {
  readonly seed: number;
  readonly commitlog: CommitlogMode;
  readonly redisPersistence: RedisPersistence;
  readonly messages: number;
  readonly trades: number;
  readonly faults: FaultRecord[];
  readonly injected: { duplicates: number; swaps: number; malformed: number };
  readonly checks: ChaosCheck[];
  readonly ok: boolean;
  /** Processes that exited without being told to (each was started again). */
  readonly unexpectedExits: ProcessExit[];
  /** Stack start-up until the stream starts, ms. */
  readonly setupMs: number;
  /** The stream, start to last message sent, ms. */
  readonly sendMs: number;
  /** Stream start until every shard's watermark reached its last sequence, ms. */
  readonly settledMs: number;
  /** The end checks (reads and the full reconciliation), ms. */
  readonly checkMs: number;
  readonly elapsedMs: number;
  /** On a ring: its contact points and the settled rate while a node was away against the overall one. */
  readonly ring?: { readonly hosts: readonly string[]; readonly replicationFactor: number; readonly consistency: string; readonly throughput: RingThroughput };
  /** Settler name → wall-clock offset, s (only those shifted). */
  readonly settlerClocks?: Record<string, number>;
}

/**
 * The fault plan: which faults, and when (as fractions of the stream's expected send time, in
 * order). Every kind at least once when there are enough faults, kill -9 of Cassandra at least
 * `cassandraKills` times, one in each equal part of the stream so they are spread over it (a
 * kill at the very end, once everything settled, would lose nothing); the rest at random
 * moments. Same seed, same plan.
 */
export function faultPlan(random: () => number, faults: number, kinds: readonly FaultKind[], cassandraKills: number): { kind: FaultKind; at: number }[] {
  const kills = kinds.includes('kill-cassandra') ? cassandraKills : 0;
  const others = kinds.filter((k) => k !== 'kill-cassandra');
  const rest = Math.max(faults - kills, others.length === 0 ? 0 : Math.min(others.length, faults));
  const plan: { kind: FaultKind; at: number }[] = [];
  // The other kinds round robin (each once before any twice), in random order.
  const pool: FaultKind[] = others.length === 0 ? ['kill-cassandra'] : Array.from({ length: rest }, (_, i) => others[i % others.length]!);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const span = 0.85;
  for (let i = 0; i < kills; i++) plan.push({ kind: 'kill-cassandra', at: 0.05 + (span * (i + random())) / kills });
  for (const kind of others.length === 0 ? [] : pool) plan.push({ kind, at: 0.05 + random() * span });
  return plan.sort((a, b) => a.at - b.at);
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

/** The promise's value, or `fallback` when it fails or takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } catch {
    return fallback;
  } finally {
    clearTimeout(timer);
  }
}

/** How often BullMQ looks for jobs whose lock expired, in this run (see chaosConfig). */
const STALLED_INTERVAL_MS = 1_000;

function chaosConfig(options: ChaosOptions, redisUrl: string, cassandraPort: number, scylla?: Record<string, unknown>): Readonly<SettlementConfig> {
  const base = loadConfig({ cwd: ROOT, env: {} });
  const raw = JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as {
    [key: string]: Record<string, unknown>;
  };
  raw['scylladb'] = { ...raw['scylladb'], hosts: [`127.0.0.1:${cassandraPort}`], keyspace: 'chaos', request_timeout_ms: 5000, ...scylla };
  raw['redis'] = { ...raw['redis'], url: redisUrl, prefix: '{chaos}' };
  raw['zmq'] = { ...raw['zmq'], settlement_port: options.portBase + 1, replay_endpoint: `tcp://127.0.0.1:${options.portBase + 2}` };
  // A killed settler's job is handed on once its lock expired and BullMQ's stalled check saw it
  // twice: lock + 2 × interval. The defaults (60 s, 30 s) would idle a shard for up to two
  // minutes per kill; short values here let many faults hit a run of a few minutes.
  raw['settler'] = { ...raw['settler'], lock_duration_ms: 4000, stalled_interval_ms: STALLED_INTERVAL_MS };
  raw['reconciliation'] = { ...raw['reconciliation'], enabled: true, interval_seconds: 20, sample_size: 200 };
  (raw as Record<string, unknown>)['data_dir'] = path.join(options.workDir, 'data');
  (raw as Record<string, unknown>)['log_level'] = 'info';
  return parseConfig(raw);
}

/**
 * A simulator whose stream holds exactly `trades` trades and ends with the last of them. The
 * share of trades grows along a stream (at first most users must deposit and lock before they
 * trade), so it is measured, not guessed: generate more than enough, then cut at the wanted
 * trade. The generator is prefix-stable: the first n messages do not depend on how many follow.
 */
function simulatorWithTrades(trades: number, options: Omit<SimulatorOptions, 'messages'>): Simulator {
  for (let messages = trades * 2; ; messages *= 2) {
    const probe = createSimulator({ ...options, messages, logger: undefined });
    let seen = 0;
    const last = probe.messages.findIndex((m) => m.kind === 'trade' && ++seen === trades);
    void probe.close();
    if (last < 0) continue;
    const simulator = createSimulator({ ...options, messages: last + 1 });
    const got = simulator.messages.filter((m) => m.kind === 'trade').length;
    if (got !== trades) throw new Error(`simulator stream of ${last + 1} messages holds ${got} trades, expected ${trades}`);
    return simulator;
  }
}

/**
 * A child process under a supervisor, as a container restart policy would keep it: one that
 * exits without being told to is recorded (a finding of the run) and started again.
 */
class Supervised {
  readonly unexpectedExits: ProcessExit[] = [];
  /** How the final SIGTERM ended: the exit code, 'hung' (killed after the grace time) or 'not running'. */
  finalExit: number | null | 'hung' | 'not running' | undefined;
  private intendedDown = false;

  constructor(
    readonly app: ChildApp,
    private readonly clockMs: () => number,
    private readonly log: Logger,
  ) {}

  get name(): string {
    return this.app.options.name;
  }

  get pid(): number | undefined {
    return this.app.pid;
  }

  start(): this {
    this.intendedDown = false;
    this.app.start();
    const pid = this.app.pid;
    void this.app.waitExit().then((code) => {
      if (this.intendedDown || this.app.pid !== pid) return;
      this.unexpectedExits.push({ name: this.name, atMs: this.clockMs(), code });
      this.log.error({ process: this.name, pid, code }, 'process exited by itself; starting it again');
      setTimeout(() => {
        if (!this.intendedDown && !this.app.running) this.start();
      }, 1000);
    });
    return this;
  }

  async kill(): Promise<void> {
    this.intendedDown = true;
    await this.app.stop('SIGKILL');
  }

  signal(signal: NodeJS.Signals): void {
    this.app.signal(signal);
  }

  /** SIGTERM; a process that has not exited after `graceMs` is killed and counts as hung. */
  async stop(graceMs: number): Promise<void> {
    this.intendedDown = true;
    if (!this.app.running) {
      this.finalExit ??= 'not running';
      return;
    }
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
    }, graceMs);
    const code = await this.app.stop('SIGTERM', graceMs);
    clearTimeout(timer);
    this.finalExit = hung ? 'hung' : code;
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = options.logger;
  // One seeded generator for the whole fault schedule (the simulator's, seeded the same way).
  const rng = new Rng(options.seed);
  const random = (): number => rng.next();
  const commitlog = options.commitlog ?? 'periodic';
  const redisPersistence = options.redisPersistence ?? (commitlog === 'batch' ? 'aof-always' : 'none');
  rmSync(options.workDir, { recursive: true, force: true });
  const redis = new PrivateRedis(options.portBase, path.join(options.workDir, 'redis'), redisPersistence);
  const cassandraOptions: LocalCassandraOptions = {
    dir: path.join(options.workDir, 'cassandra'),
    port: options.portBase + 3,
    heapMb: 768,
    readyTimeoutMs: 120_000,
    yamlOverrides: cassandraYamlOverrides(commitlog),
  };
  log.info({ commitlog, redisPersistence, yamlOverrides: cassandraOptions.yamlOverrides ?? 'none (the local stack\'s cassandra.yaml)', ring: options.ring }, 'chaos run: private stack');
  const quiet = (message: string) => log.info(message);
  await redis.start();
  let ring: LocalRing | undefined;
  if (options.ring) ring = await startRing(path.join(options.workDir, 'ring'), options.ring.port, quiet, cassandraOptions.yamlOverrides);
  else await startLocalCassandra(cassandraOptions, quiet);
  const config = chaosConfig(options, redis.url, cassandraOptions.port, ring === undefined ? undefined : ringScyllaSection(ring));
  const configFile = writeConfigYaml(config, path.join(options.workDir, 'config.yaml'));
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  await admin.execute('DROP KEYSPACE IF EXISTS chaos');
  await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: 'chaos', replicationFactor: ring?.replicationFactor ?? 1, symbols: config.symbols.map((s) => s.name) });
  await admin.shutdown();
  const harnessRedis: Redis = createRedisConnection(redis.url);
  await harnessRedis.flushall();
  const catalog = new MarketCatalog(config);
  // The harness's own view of the queues: who is settling, failed jobs, the dead-letter queue.
  const queues = [...catalog.shards].map((shard) => createSettlementQueue(shard, { connection: harnessRedis, prefix: config.redis.prefix }));
  const deadLetterQueue = new Queue(DEAD_LETTER_QUEUE, { connection: harnessRedis, prefix: config.redis.prefix });
  for (const q of [...queues, deadLetterQueue]) q.on('error', () => undefined);

  const simulator = simulatorWithTrades(options.trades, {
    market: marketFromConfig(config),
    users: options.users,
    seed: options.seed,
    duplicateRate: 0.01,
    reorderRate: 0.01,
    malformedRate: 0.002,
    logger: log,
  });
  const replay = await simulator.serveReplay(config.zmq.replay_endpoint!);
  let streamStarted = Date.now();
  const sinceStream = () => Date.now() - streamStarted;
  const env = { ...process.env, SETTLEMENT_CONFIG: configFile, LOG_LEVEL: 'info' };
  const logDir = path.join(options.workDir, 'logs');
  const supervise = (app: string, name: string, extraEnv?: NodeJS.ProcessEnv) => new Supervised(new ChildApp({ app, name, env: { ...env, ...extraEnv }, logDir }), sinceStream, log).start();
  const ingestor = supervise('ingestor', 'ingestor');
  // Settlers on hosts whose clocks disagree: settler N's wall clock shifted by settlerClockOffsetsS[N-1].
  const settlerClocks: Record<string, number> = {};
  const settlers = Array.from({ length: options.settlers }, (_, i) => {
    const offsetS = options.settlerClockOffsetsS?.[i];
    if (offsetS !== undefined) settlerClocks[`settler-${i + 1}`] = offsetS;
    return supervise('settler', `settler-${i + 1}`, offsetS === undefined ? undefined : clockSkewEnv(offsetS));
  });
  const reconciler = supervise('reconciler', 'reconciler');
  const apps = [ingestor, ...settlers, reconciler];

  /**
   * The settler a fault should hit: the one running a settlement job now or, when every queue is
   * idle, the one that finished the latest. Hitting a standby would test nothing. Another one
   * is taken one time in four, so standbys are hit too; a random one when Redis does not say.
   */
  const settlerToHit = async (): Promise<Supervised> => {
    const busy = await within(
      (async () => {
        const votes = new Map<number, number>();
        for (const queue of queues) {
          const [job] = [...(await queue.getActive(0, 0)), ...(await queue.getCompleted(0, 0))];
          const pid = Number(/:(\d+)$/.exec(job?.processedBy ?? '')?.[1]);
          if (Number.isInteger(pid)) votes.set(pid, (votes.get(pid) ?? 0) + 1);
        }
        const top = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
        return settlers.find((s) => s.pid === top);
      })(),
      2000,
      undefined,
    );
    const others = settlers.filter((s) => s !== busy);
    if (busy === undefined || (others.length > 0 && random() < 0.25)) return (others.length > 0 ? others : settlers)[Math.floor(random() * (others.length || settlers.length))]!;
    return busy;
  };

  /**
   * Each shard's stored watermark (last_seq), read by the harness's own connection at ONE
   * (undefined when Cassandra does not answer within `ms`): read right before and right after a
   * Cassandra fault, it shows whether storage went back.
   */
  const probe = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  probe.on('log', () => undefined);
  const watermarks = async (ms: number): Promise<Map<string, bigint> | undefined> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const rows = await within(
        probe.execute('SELECT shard, last_seq FROM chaos.shard_watermarks', [], { prepare: true }).then((r) => r.rows),
        Math.max(1, Math.min(2000, deadline - Date.now())),
        undefined,
      );
      if (rows !== undefined) return new Map(rows.map((r) => [r['shard'] as string, r['last_seq'] as bigint]));
      if (Date.now() >= deadline) return undefined;
      await sleep(200);
    }
  };
  const faults: FaultRecord[] = [];
  const checks: ChaosCheck[] = [];
  let client: cassandra.Client | undefined;
  let setupMs = 0;
  let sendMs = 0;
  let settledMs = Number.NaN;
  let checkMs = 0;
  try {
    await waitForHeartbeats(harnessRedis, config.redis.prefix, { ingestor: 1, settler: options.settlers, reconciler: 1 }, 120_000);
    streamStarted = Date.now();
    setupMs = streamStarted - started;
    const expectedSendMs = (simulator.schedule.entries.length / options.ratePerSecond) * 1000;
    // The simulator's own pacing, with the send time of each malformed frame noted: a lost one
    // is then explained by what happened right after it was sent.
    const malformedSentAtMs = new Map<string, number>();
    const malformedFrames = new Set(simulator.schedule.malformed.map((m) => m.raw));
    let framesSent = 0;
    const frameAt = (i: number, nowMs: number): string => {
      framesSent = Math.max(framesSent, i + 1);
      const frame = simulator.frameAt(i, nowMs);
      if (malformedFrames.has(frame)) malformedSentAtMs.set(frame, sinceStream());
      return frame;
    };
    const sending = sendPaced(simulator.schedule.entries.length, frameAt, {
      mode: 'push',
      endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`,
      ratePerSecond: options.ratePerSecond,
      lingerMs: 600_000,
      logger: log,
    });
    void sending.then(
      (r) => {
        sendMs = sinceStream();
        log.info({ sent: r.sent, sendMs }, 'stream sent');
      },
      // Awaited below, where a failure ends the run.
      () => undefined,
    );

    // Fault plan (faultPlan): seeded. Faults run one after the other; one that is due while
    // another still runs starts right after it.
    const plan = faultPlan(random, options.faults, options.kinds ?? (ring ? RING_FAULT_KINDS : FAULT_KINDS), options.cassandraKills ?? DEFAULT_CASSANDRA_KILLS);
    // On a ring: the settled rate every second (from the watermarks), and when a node was away.
    const messagesPerFrame = simulator.messages.length / Math.max(1, simulator.schedule.entries.length);
    const settledRate = ring === undefined ? undefined : new SettledRate(simulator.messages, () => watermarks(900), () => Math.round(framesSent * messagesPerFrame), sinceStream);
    settledRate?.start();
    const absences: NodeAbsence[] = [];
    let nodeKills = 0;
    /**
     * A ring node away, one at a time: kill -9 (the nodes in turn, so three kills hit each once)
     * until it is back in the ring, or SIGSTOP for longer than the client's request timeout.
     */
    const ringNodeFault = async (kind: FaultKind): Promise<{ target: string; detail: string }> => {
      if (ring === undefined) throw new Error(`${kind} needs a ring`);
      const kill = kind !== 'pause-node';
      const node = kill ? (nodeKills++ % ring.replicationFactor) + 1 : 1 + Math.floor(random() * ring.replicationFactor);
      const before = await watermarks(3000);
      const fromMs = sinceStream();
      if (kill) {
        const pid = ring.killNode(node);
        // Until the killed JVM is gone: on a loaded machine its teardown took over 2 s (seed 2,
        // 3 Dec), and restartNode took the dying process, whose CQL port still answered, for a
        // running node ("already running"), did not start it, and the ring never became whole.
        const gone = Date.now() + 30_000;
        while (ring.pidOf(node) === pid && Date.now() < gone) await sleep(100);
        await sleep(500 + random() * 1500);
        await ring.restartNode(node, quiet);
      } else {
        ring.pauseNode(node);
        await sleep(config.scylladb.request_timeout_ms + 2000 + random() * 2000);
        ring.resumeNode(node);
      }
      const toMs = sinceStream();
      absences.push({ kind: kill ? 'kill -9' : 'SIGSTOP', node, fromMs, toMs });
      const after = await watermarks(15_000);
      return { target: `node ${node} ${ring.hosts[node - 1]} (${kill ? 'kill -9' : 'SIGSTOP'})`, detail: `away ${((toMs - fromMs) / 1000).toFixed(1)} s; ${describeWatermarks(before, after)}` };
    };
    log.info({ plan: plan.map((p) => `${p.kind}@${((p.at * expectedSendMs) / 1000).toFixed(1)}s`) }, 'fault plan');
    for (const { kind, at } of plan) {
      const waitMs = at * expectedSendMs - sinceStream();
      if (waitMs > 0) await sleep(waitMs);
      // Chosen before the clock starts: the lookup may wait for a Redis that is coming back.
      const hit = kind === 'kill-settler' || kind === 'pause-settler' ? await settlerToHit() : undefined;
      const atMs = sinceStream();
      const t0 = Date.now();
      let target = '';
      let detail: string | undefined;
      switch (kind) {
        case 'kill-settler': {
          const s = hit!;
          target = s.name;
          await s.kill();
          await sleep(300 + random() * 1500);
          s.start();
          break;
        }
        case 'kill-ingestor':
          target = 'ingestor';
          await ingestor.kill();
          await sleep(300 + random() * 1500);
          ingestor.start();
          break;
        case 'kill-reconciler':
          target = 'reconciler';
          await reconciler.kill();
          await sleep(200 + random() * 800);
          reconciler.start();
          break;
        case 'restart-redis': {
          // Without persistence (the default, like the machine's Redis) it comes back empty:
          // every queue, job chain and position gone. With an fsynced AOF it keeps everything.
          target = redisPersistence === 'none' ? 'redis (kill -9, comes back empty)' : 'redis (kill -9, AOF fsynced always)';
          const keysBefore = await within(harnessRedis.dbsize(), 1000, -1);
          await redis.kill();
          if (redisPersistence === 'none') redis.deleteData();
          await sleep(1000 + random() * 2000);
          await redis.start();
          const keysAfter = await within(harnessRedis.dbsize(), 5000, -1);
          detail = `keys ${keysBefore} before, ${keysAfter} after the restart`;
          break;
        }
        case 'pause-node':
          ({ target, detail } = await ringNodeFault(kind));
          break;
        case 'restart-cassandra':
        case 'kill-cassandra': {
          if (ring !== undefined) {
            ({ target, detail } = await ringNodeFault(kind));
            break;
          }
          // A clean stop (SIGTERM) or a crash (kill -9). With the periodic commit log, a crash
          // loses what was acknowledged since the last sync: the service must re-apply it.
          const crash = kind === 'kill-cassandra';
          target = crash ? 'cassandra (kill -9)' : 'cassandra (SIGTERM)';
          const before = await watermarks(3000);
          if (crash) await killLocalCassandra(cassandraOptions);
          else await stopLocalCassandra(cassandraOptions, quiet);
          await sleep(500 + random() * 1500);
          await startLocalCassandra(cassandraOptions, quiet);
          const after = await watermarks(15_000);
          detail = describeWatermarks(before, after);
          break;
        }
        case 'pause-settler': {
          const s = hit!;
          target = s.name;
          s.signal('SIGSTOP');
          // Longer than its lock and its lease, plus two stalled checks: another settler takes
          // the shards and the job over while this one is frozen; then it wakes up mid-job.
          const { lock_duration_ms: lockMs, shard_lease_ms: leaseMs } = config.settler;
          await sleep(Math.max(lockMs, leaseMs) + 2 * STALLED_INTERVAL_MS + 1000 + random() * 1500);
          s.signal('SIGCONT');
          break;
        }
      }
      const record: FaultRecord = { atMs, kind, target, durationMs: Date.now() - t0, ...(detail === undefined ? {} : { detail }) };
      faults.push(record);
      log.info(record, 'fault injected');
      options.onFault?.(record);
    }
    const sendReport = await sending;

    // Settled: every shard's watermark at the last sequence the simulator sent for it.
    const expected = simulator.expected();
    const wantLast = new Map<string, bigint>([...catalog.markets.keys()].map((s) => [s, BigInt(expected.lastSequences.bySymbol[s] ?? '0')]));
    wantLast.set(FUNDING_SHARD, BigInt(expected.lastSequences.funding));
    client = createScyllaClient(scyllaOptionsFromConfig(config));
    await client.connect();
    const deadline = Date.now() + (options.settleTimeoutMs ?? 600_000);
    const stallMs = options.stallTimeoutMs ?? 120_000;
    let lagging: string[] = [];
    let nextProgress = 0;
    let lastSum = -1n;
    let movedAt = Date.now();
    let stalled = false;
    while (Date.now() < deadline) {
      const rows = (await client.execute('SELECT shard, last_seq FROM chaos.shard_watermarks', [], { prepare: true })).rows;
      const have = new Map(rows.map((r) => [r['shard'] as string, r['last_seq'] as bigint]));
      lagging = [...wantLast].filter(([shard, seq]) => (have.get(shard) ?? 0n) < seq).map(([shard, seq]) => `${shard} at ${have.get(shard) ?? 0n}/${seq}`);
      if (lagging.length === 0) {
        settledMs = sinceStream();
        break;
      }
      // A halted shard never moves again: stop waiting once nothing moved for a while.
      const sum = [...have.values()].reduce((a, b) => a + b, 0n);
      if (sum !== lastSum) {
        lastSum = sum;
        movedAt = Date.now();
      } else if (Date.now() - movedAt > stallMs) {
        stalled = true;
        break;
      }
      if (Date.now() >= nextProgress) {
        log.info({ lagging }, 'waiting for the shards to settle');
        nextProgress = Date.now() + 5000;
      }
      await sleep(250);
    }
    settledRate?.stop();
    const checksStarted = Date.now();
    checks.push({
      name: 'every shard settled to its last sequence',
      ok: lagging.length === 0,
      detail: lagging.length === 0 ? `all ${wantLast.size} shards` : `lagging: ${lagging.join(', ')}${stalled ? ` (no progress for ${stallMs / 1000} s)` : ''}`,
    });

    // Balances and conservation.
    const balances = new BalanceRepository(client, 'chaos');
    const { checked, mismatches, conservationBroken } = await checkBalances(balances, expected);
    checks.push({ name: 'every balance equals the expectation', ok: mismatches.length === 0, detail: `${checked} balances, ${mismatches.length} mismatches${mismatches.length ? `: ${mismatches.slice(0, 5).join('; ')}` : ''}` });
    checks.push({ name: 'conservation per asset', ok: conservationBroken.length === 0, detail: conservationBroken.length === 0 ? `${Object.keys(expected.totals).length} assets: sum = deposits − withdrawals` : `broken for assets ${conservationBroken.join(', ')}` });

    // Every trade settled exactly once: the trade tables hold exactly the simulator's trade ids
    // (a trade applied twice would also show in the balances above).
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

    // Every malformed message kept with a reason: the dead_letters table, the failed-trades file
    // (where the ingestor puts what Cassandra did not take) or the dead-letter queue.
    // raw → where it is kept and the field its reason names.
    const kept = new Map<string, { where: string; field: string | null }>();
    for (const shard of [UNROUTED_SHARD, ...catalog.shards]) {
      for (const row of await allRows(client, 'SELECT raw, reason, field FROM chaos.dead_letters WHERE shard = ?', [shard])) {
        kept.set(row['raw'] as string, { where: `dead_letters ${shard}: ${row['reason'] as string}`, field: (row['field'] as string | null) ?? null });
      }
    }
    const failedFile = path.join(config.data_dir, config.backup.failed_trades_file);
    if (existsSync(failedFile)) {
      for (const line of readFileSync(failedFile, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const entry = JSON.parse(line) as { kind?: string; raw?: unknown; reason?: unknown; field?: unknown };
          if (entry.kind === 'dead_letter' && typeof entry.raw === 'string' && !kept.has(entry.raw)) {
            kept.set(entry.raw, { where: `failed-trades file: ${String(entry.reason)}`, field: typeof entry.field === 'string' ? entry.field : null });
          }
        } catch {
          // A torn last line after a kill: its message is also in the table or the queue.
        }
      }
    }
    for (const job of await deadLetterQueue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'paused', 'prioritized'])) {
      const data = job.data as { raw?: unknown; reason?: unknown; field?: unknown } | undefined;
      if (typeof data?.raw === 'string' && !kept.has(data.raw)) {
        kept.set(data.raw, { where: `dead-letter queue: ${String(data.reason)}`, field: typeof data.field === 'string' ? data.field : null });
      }
    }
    const malformedRaw = new Set(expected.malformed.flatMap((m) => [m.raw, `base64:${Buffer.from(m.raw).toString('base64')}`]));
    const lost: string[] = [];
    const misnamed: string[] = [];
    const ingestorKillsMs = faults.filter((f) => f.kind === 'kill-ingestor').map((f) => f.atMs);
    for (const m of expected.malformed) {
      const entry = kept.get(m.raw) ?? kept.get(`base64:${Buffer.from(m.raw).toString('base64')}`);
      if (entry === undefined) {
        // The ingestor kill nearest to its send time, if any was close: the likely cause.
        const sentMs = malformedSentAtMs.get(m.raw);
        const killMs = sentMs === undefined ? undefined : [...ingestorKillsMs].sort((x, y) => Math.abs(x - sentMs) - Math.abs(y - sentMs))[0];
        const near = sentMs !== undefined && killMs !== undefined && Math.abs(killMs - sentMs) < 5_000 ? `, ingestor SIGKILLed at ${(killMs / 1000).toFixed(2)} s` : '';
        lost.push(`${m.kind} (${sentMs === undefined ? 'never sent' : `sent at ${(sentMs / 1000).toFixed(2)} s${near}`})`);
      } else if (entry.field !== m.field) misnamed.push(`${m.kind}: field ${entry.field}, expected ${m.field}`);
    }
    checks.push({
      name: 'every malformed message dead-lettered',
      ok: lost.length === 0 && misnamed.length === 0,
      detail: `${expected.malformed.length - lost.length}/${expected.malformed.length} kept, naming the field${lost.length ? `; missing: ${lost.join('; ')}` : ''}${misnamed.length ? `; wrong field: ${misnamed.slice(0, 3).join('; ')}` : ''}`,
    });
    // Duplicates are resent bytes with the same sequence: replays, never dead letters.
    const wronglyKept = [...kept].filter(([raw]) => !malformedRaw.has(raw));
    checks.push({
      name: 'nothing valid dead-lettered',
      ok: wronglyKept.length === 0,
      detail: wronglyKept.length === 0 ? `${kept.size} dead letters, all malformed` : `${wronglyKept.length} valid messages dead-lettered: ${wronglyKept.slice(0, 3).map(([raw, k]) => `${k.where} (${raw.slice(0, 80)})`).join('; ')}`,
    });

    // A failed settlement job is a hole in its shard's chain: there must be none.
    const failedJobs: string[] = [];
    for (const queue of queues) {
      const failed = await queue.getFailed(0, 9);
      for (const job of failed) failedJobs.push(`${job.id}: ${job.failedReason}`);
    }
    checks.push({ name: 'no settlement job failed', ok: failedJobs.length === 0, detail: failedJobs.length === 0 ? `${queues.length} queues` : failedJobs.slice(0, 5).join('; ') });

    // A full reconciliation finds nothing.
    const reconciliation = await reconcileOnce({ config, logger: log, request: { mode: 'full', fix: false, trigger: 'chaos' } });
    checks.push({
      name: 'full reconciliation finds 0 errors',
      ok: reconciliation.errors === 0 && reconciliation.status === 'completed',
      detail: `${reconciliation.usersChecked} users, ${reconciliation.rowsChecked} rows, ${reconciliation.errors} errors (${JSON.stringify(reconciliation.byKind)}), status ${reconciliation.status}`,
    });
    checkMs = Date.now() - checksStarted;

    // Every process lived through the faults (none died by itself) and stops cleanly.
    await Promise.all(apps.map((a) => a.stop(20_000)));
    const unexpectedExits = apps.flatMap((a) => a.unexpectedExits);
    checks.push({
      name: 'no process exited by itself',
      ok: unexpectedExits.length === 0,
      detail: unexpectedExits.length === 0 ? `${apps.length} processes` : unexpectedExits.map((e) => `${e.name} (code ${e.code}) at ${Math.round(e.atMs / 1000)} s`).join(', '),
    });
    const unclean = apps.filter((a) => a.finalExit !== 0);
    checks.push({
      name: 'every process stopped cleanly on SIGTERM',
      ok: unclean.length === 0,
      detail: unclean.length === 0 ? 'exit 0 each' : unclean.map((a) => `${a.name}: ${typeof a.finalExit === 'string' ? a.finalExit : `exit ${a.finalExit}`}`).join(', '),
    });

    const fewFaults = faults.length < options.faults;
    return {
      seed: options.seed,
      commitlog,
      redisPersistence,
      messages: simulator.messages.length,
      trades: [...wantTrades.values()].reduce((s, set) => s + set.size, 0),
      faults,
      injected: { duplicates: expected.counts.duplicatesInjected, swaps: expected.counts.swapsInjected, malformed: expected.counts.malformedInjected },
      checks,
      ok: checks.every((c) => c.ok) && !fewFaults && sendReport.sent === simulator.schedule.entries.length,
      unexpectedExits,
      setupMs,
      sendMs,
      settledMs,
      checkMs,
      elapsedMs: Date.now() - started,
      ...(ring === undefined || settledRate === undefined
        ? {}
        : { ring: { hosts: ring.hosts, replicationFactor: ring.replicationFactor, consistency: config.scylladb.consistency, throughput: settledRate.report(absences, settledMs, options.ratePerSecond) } }),
      ...(Object.keys(settlerClocks).length === 0 ? {} : { settlerClocks }),
    };
  } finally {
    await Promise.allSettled(apps.map((a) => a.stop(20_000)));
    apps.forEach((a) => a.app.close());
    await client?.shutdown().catch(() => undefined);
    await probe.shutdown().catch(() => undefined);
    await Promise.allSettled([...queues, deadLetterQueue].map((q) => q.close()));
    harnessRedis.disconnect();
    await replay.close().catch(() => undefined);
    await simulator.close();
    await redis.kill();
    if (ring !== undefined) await ring.stop(quiet);
    else await stopLocalCassandra(cassandraOptions, quiet);
  }
}

/** Waits until each app has published as many heartbeats as it has processes: all are up. */
async function waitForHeartbeats(redis: Redis, prefix: string, want: Record<string, number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let have: Record<string, number> = {};
  while (Date.now() < deadline) {
    have = {};
    for (const key of await redis.keys(heartbeatPattern(prefix))) {
      const app = key.slice(heartbeatPattern(prefix).length - 1).split(':')[0]!;
      have[app] = (have[app] ?? 0) + 1;
    }
    if (Object.entries(want).every(([app, n]) => (have[app] ?? 0) >= n)) return;
    await sleep(200);
  }
  throw new Error(`processes not up after ${timeoutMs} ms: heartbeats ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
}

/** "btc_usdt 1200→1150 (−50), …": each shard's stored watermark before and after a Cassandra fault. */
export function describeWatermarks(before: Map<string, bigint> | undefined, after: Map<string, bigint> | undefined): string {
  if (before === undefined || after === undefined) return `watermarks ${before === undefined ? 'not read before' : 'read before'}, ${after === undefined ? 'not read after' : 'read after'}`;
  const shards = [...new Set([...before.keys(), ...after.keys()])].sort();
  // Nothing stored yet (or everything lost by an earlier fault and not written again since).
  if (shards.length === 0) return 'no shard watermark stored before or after';
  const back = shards.filter((s) => (after.get(s) ?? 0n) < (before.get(s) ?? 0n));
  const parts = shards.map((s) => {
    const b = before.get(s) ?? 0n;
    const a = after.get(s) ?? 0n;
    return `${s} ${b}→${a}${a < b ? ` (−${b - a})` : ''}`;
  });
  return `${back.length === 0 ? 'storage kept every watermark' : `storage went back on ${back.join(', ')}`}: ${parts.join(', ')}`;
}

/** kill -9 of the private Cassandra, as a crash would; waits until the process is gone. */
async function killLocalCassandra(options: LocalCassandraOptions): Promise<void> {
  const file = path.join(options.dir, 'cassandra.pid');
  const pid = readPid(file);
  if (pid === undefined) return;
  process.kill(pid, 'SIGKILL');
  while (readPid(file) !== undefined) await sleep(50);
  rmSync(file, { force: true });
}
