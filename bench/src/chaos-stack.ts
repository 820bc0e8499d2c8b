/**
 * The chaos run's private stack: its own Redis and its own Cassandra (one node, or a three-node
 * ring), the run's config and the harness's own connections to them. Private, so the faults can
 * kill, empty and restart them without touching anyone else's.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { DEAD_LETTER_QUEUE, MarketCatalog } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { ROOT, readPid, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions, type LocalRing } from '@settlement/tools';
import { ringScyllaSection, startRing } from './chaos-ring.js';
import type { ChaosOptions } from './chaos-types.js';
import { sleep } from './chaos-wait.js';
import { writeConfigYaml } from './config-file.js';
import { cassandraYamlOverrides, type CommitlogMode } from './commitlog.js';
import { ChaosLeftovers } from './chaos-leftovers.js';
import { PrivateRedis, type RedisPersistence } from './private-redis.js';

/** How often BullMQ looks for jobs whose lock expired, in this run (see chaosConfig). */
export const STALLED_INTERVAL_MS = 1_000;

export interface PrivateStack {
  readonly commitlog: CommitlogMode;
  readonly redisPersistence: RedisPersistence;
  readonly redis: PrivateRedis;
  /** The single node's options (its port also when the run is on a ring). */
  readonly cassandraOptions: LocalCassandraOptions;
  /** Set when the run is on a private three-node ring instead of the single node. */
  readonly ring: LocalRing | undefined;
  readonly config: Readonly<SettlementConfig>;
  /** The config as YAML, for the child processes. */
  readonly configFile: string;
  readonly catalog: MarketCatalog;
  /** The harness's own Redis connection (its view of the queues, key counts). */
  readonly harnessRedis: Redis;
  /** The harness's own view of the queues: who is settling, failed jobs. */
  readonly queues: readonly Queue[];
  readonly deadLetterQueue: Queue;
  /** Logs a start or stop step of a store at info. */
  readonly quiet: (message: string) => void;
  /** Records every process the run starts, so none outlives it (chaos-leftovers.ts). */
  readonly leftovers: ChaosLeftovers;
}

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
 * Empties the work folder, starts the private Redis and Cassandra (or ring), writes the run's
 * config, creates the keyspace afresh and opens the harness's connections.
 */
export async function startPrivateStack(options: ChaosOptions): Promise<PrivateStack> {
  const log: Logger = options.logger;
  const commitlog = options.commitlog ?? 'periodic';
  const redisPersistence = options.redisPersistence ?? (commitlog === 'batch' ? 'aof-always' : 'none');
  const leftovers = new ChaosLeftovers(options.portBase);
  const killed = await leftovers.reap();
  if (killed.length > 0) log.warn({ killed, record: leftovers.file }, 'killed processes an earlier chaos run on these ports left running');
  rmSync(options.workDir, { recursive: true, force: true });
  leftovers.recordFolder(options.workDir);
  const redis = new PrivateRedis(options.portBase, path.join(options.workDir, 'redis'), redisPersistence, (pid) => leftovers.recordProcess(pid, 'redis-server'));
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
  const queues = [...catalog.shards].map((shard) => createSettlementQueue(shard, { connection: harnessRedis, prefix: config.redis.prefix }));
  const deadLetterQueue = new Queue(DEAD_LETTER_QUEUE, { connection: harnessRedis, prefix: config.redis.prefix });
  // Redis goes away during the run on purpose: its errors are expected, not the run's end.
  for (const q of [...queues, deadLetterQueue]) q.on('error', () => undefined);
  return { commitlog, redisPersistence, redis, cassandraOptions, ring, config, configFile, catalog, harnessRedis, queues, deadLetterQueue, quiet, leftovers };
}

/** Closes the harness's queues and its Redis connection. */
export async function closeHarness(stack: PrivateStack): Promise<void> {
  await Promise.allSettled([...stack.queues, stack.deadLetterQueue].map((q) => q.close()));
  stack.harnessRedis.disconnect();
}

/** Kills the private Redis and stops the private Cassandra (or ring). */
export async function stopStores(stack: PrivateStack): Promise<void> {
  await stack.redis.kill();
  if (stack.ring !== undefined) await stack.ring.stop(stack.quiet);
  else await stopLocalCassandra(stack.cassandraOptions, stack.quiet);
}

/** kill -9 of the private Cassandra, as a crash would; waits until the process is gone. */
export async function killLocalCassandra(options: LocalCassandraOptions): Promise<void> {
  const file = path.join(options.dir, 'cassandra.pid');
  const pid = readPid(file);
  if (pid === undefined) return;
  process.kill(pid, 'SIGKILL');
  while (readPid(file) !== undefined) await sleep(50);
  rmSync(file, { force: true });
}
