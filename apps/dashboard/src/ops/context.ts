/**
 * The connections and repositories the dashboard and the CLI share: one Redis connection for
 * every queue, one Cassandra client, the queues by name. Built once from validated config.
 */
import { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { Redis, RedisOptions } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, RECONCILIATION_QUEUE } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import {
  BalanceRepository,
  DeadLetterRepository,
  ReconciliationStore,
  TradeRepository,
  WatermarkRepository,
  createScyllaClient,
  scyllaOptionsFromConfig,
} from '@settlement/scylla';

export interface Ops {
  readonly config: Readonly<SettlementConfig>;
  readonly catalog: MarketCatalog;
  readonly redis: Redis;
  readonly scylla: cassandra.Client;
  /** One queue per shard, in catalog order (symbols, then funding). */
  readonly settlementQueues: ReadonlyArray<{ shard: string; queue: Queue }>;
  readonly reconcileQueue: Queue;
  readonly balances: BalanceRepository;
  readonly trades: TradeRepository;
  readonly watermarks: WatermarkRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly reconciliations: ReconciliationStore;
  /** Closes queues and connections; idempotent, every step runs even if one fails. */
  close(): Promise<void>;
}

export interface OpenOpsOptions {
  /** Extra ioredis options, e.g. a short connect timeout and no retries for the CLI. */
  readonly redis?: RedisOptions;
}

export function openOps(config: Readonly<SettlementConfig>, options: OpenOpsOptions = {}): Ops {
  const catalog = new MarketCatalog(config);
  // Commands fail after a few retries instead of waiting for Redis forever, so a request or a
  // CLI command reports an outage rather than hanging (the default for workers is to wait).
  const redis = createRedisConnection(config.redis.url, { maxRetriesPerRequest: 2, connectTimeout: 5_000, ...options.redis });
  const queueOptions = { connection: redis, prefix: config.redis.prefix };
  const settlementQueues = catalog.shards.map((shard) => ({ shard, queue: createSettlementQueue(shard, queueOptions) }));
  const reconcileQueue = new Queue(RECONCILIATION_QUEUE, queueOptions);
  const scylla = createScyllaClient(scyllaOptionsFromConfig(config));
  const keyspace = config.scylladb.keyspace;
  let closing: Promise<void> | undefined;
  return {
    config,
    catalog,
    redis,
    scylla,
    settlementQueues,
    reconcileQueue,
    balances: new BalanceRepository(scylla, keyspace),
    trades: new TradeRepository(scylla, keyspace, [...catalog.markets.keys()]),
    watermarks: new WatermarkRepository(scylla, keyspace),
    deadLetters: new DeadLetterRepository(scylla, keyspace),
    reconciliations: new ReconciliationStore(scylla, keyspace),
    close() {
      closing ??= (async () => {
        const queues = [...settlementQueues.map((q) => q.queue), reconcileQueue];
        await Promise.allSettled(queues.map((q) => q.close()));
        await Promise.allSettled([scylla.shutdown()]);
        redis.disconnect();
      })();
      return closing;
    },
  };
}
