/**
 * The service under measurement: the ingestor and settler processes, the bench's connections to
 * Redis, the queues and Cassandra, and the CPU meter over every process of the run.
 */
import path from 'node:path';
import { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, settlementQueueName } from '@settlement/domain';
import { BalanceRepository, createScyllaClient, scyllaOptionsFromConfig } from '@settlement/scylla';
import type { Simulator } from '@settlement/simulator';
import { ChildApp, waitFor } from '@settlement/tools';
import type { BenchMachine } from './bench-machine.js';
import { CompletionTracker } from './completions.js';
import { writeConfigYaml } from './config-file.js';
import { CpuMeter } from './cpu.js';

export interface BenchService {
  readonly config: Readonly<SettlementConfig>;
  readonly redis: Redis;
  readonly queues: readonly Queue[];
  readonly tracker: CompletionTracker;
  /** Connected by waitUntilUp. */
  readonly client: cassandra.Client;
  readonly balances: BalanceRepository;
  /** Where the apps' logs go. */
  readonly logDir: string;
  /** Every process of the run: Cassandra, Redis, the apps and this one (the load generator). */
  readonly cpu: CpuMeter;
  /** Listens for completions and waits until every process published a heartbeat. */
  waitUntilUp(): Promise<void>;
  /** Stops the apps and closes every connection. */
  stop(): Promise<void>;
}

/**
 * Starts the ingestor and `settlerCount` settlers on a cleared queue prefix, their logs in a
 * folder named after `benchStartedMs`; `simulator` is the stream whose completions are tracked.
 */
export async function startService(options: {
  readonly config: Readonly<SettlementConfig>;
  readonly settlerCount: number;
  readonly simulator: Simulator;
  readonly machine: BenchMachine;
  readonly benchStartedMs: number;
}): Promise<BenchService> {
  const { config, settlerCount, machine } = options;
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
  await clearPrefix(redis, config.redis.prefix);
  const configFile = writeConfigYaml(config, path.join(config.data_dir, 'bench-config.yaml'));
  const env = { ...process.env, SETTLEMENT_CONFIG: configFile, LOG_LEVEL: 'warn' };
  const logDir = path.join(config.data_dir, 'logs', new Date(options.benchStartedMs).toISOString().replace(/[:.]/g, '-'));
  const ingestor = new ChildApp({ app: 'ingestor', name: 'ingestor', env, logDir }).start();
  const settlers = Array.from({ length: settlerCount }, (_, i) => new ChildApp({ app: 'settler', name: `settler-${i + 1}`, env, logDir }).start());
  const apps = [ingestor, ...settlers];
  const tracker = new CompletionTracker(options.simulator);
  const queueNames = new MarketCatalog(config).shards.map(settlementQueueName);
  const queues = queueNames.map((name) => new Queue(name, { connection: { url: config.redis.url }, prefix: config.redis.prefix }));
  const client = createScyllaClient(scyllaOptionsFromConfig(config));
  const balances = new BalanceRepository(client, config.scylladb.keyspace);
  const redisPid = await redisServerPid(redis);
  if (redisPid !== undefined) machine.pinToOtherCores(redisPid);
  const cpu = new CpuMeter(() => ({
    cassandra: machine.cassandraPid,
    ...machine.otherNodes(),
    redis: redisPid,
    ingestor: ingestor.pid,
    ...Object.fromEntries(settlers.map((s, i) => [`settler-${i + 1}`, s.pid])),
    'bench+simulator': process.pid,
  }));
  return {
    config,
    logDir,
    redis,
    queues,
    tracker,
    client,
    balances,
    cpu,
    async waitUntilUp() {
      await tracker.listen(queueNames, { url: config.redis.url }, config.redis.prefix);
      await waitFor('ingestor and settler heartbeats', async () => {
        const keys = await redis.keys(`${config.redis.prefix}:heartbeat:*`);
        return keys.some((k) => k.includes(':ingestor:')) && keys.filter((k) => k.includes(':settler:')).length >= settlerCount;
      }, 60_000);
      await client.connect();
      for (const app of apps) if (!app.running) throw new Error(`${app.options.name} exited at start; see ${logDir}`);
    },
    async stop() {
      await Promise.allSettled(apps.map((a) => a.stop('SIGTERM')));
      apps.forEach((a) => a.close());
      await tracker.close();
      await Promise.allSettled(queues.map((q) => q.close()));
      await redis.quit();
      await client.shutdown();
    },
  };
}

/** The Redis server's pid (its CPU is the service's too), if it says. */
export async function redisServerPid(redis: Redis): Promise<number | undefined> {
  const pid = Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1]);
  return Number.isInteger(pid) ? pid : undefined;
}

/** Deletes every key of the bench's queue prefix: a run starts on empty queues. */
export async function clearPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
