/**
 * The transport floor of the half-max step: the same messages, at the same rate, through what
 * the service puts between the engine and the settling — ZMQ, an ingestor process, Redis and
 * BullMQ — to a worker process that takes each job as the settler does and settles nothing
 * (floor-worker.ts). Measured with the service stopped, like the raw pipeline, twice:
 *
 *  - jobs completed at once: the transport's own latency (the ingestor cuts a job after
 *    batch.max_wait_ms, the worker takes and completes it);
 *  - jobs held as long as the service's settler took per job of that shard (its mean job time
 *    in the half-max step): the ingestor then cuts jobs of the service's size, so the CPU of
 *    these processes is what the transport costs the service at its job sizes.
 *
 * The half-max targets (p50 within 10 ms of the raw pipeline, the service's own processes
 * ≤ 0.4 cores) can be met only if this floor leaves room for the settling: the report sets it
 * beside both. It runs on a queue prefix, ZMQ port and keyspace of its own (the ingestor raises
 * its position to the settled watermarks at start, and the service's are at the end of the
 * stream), with the ingestor's position set to just before the slice.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, ingestPositionKey, settlementQueueName } from '@settlement/domain';
import { sendPaced, type Simulator } from '@settlement/simulator';
import { ChildApp, waitFor } from '@settlement/tools';
import { say } from './bench-log.js';
import type { BenchMachine } from './bench-machine.js';
import type { StreamSlice } from './bench-raw.js';
import { clearPrefix, redisServerPid } from './bench-service.js';
import type { BenchKeyspaces } from './bench-stack.js';
import { CompletionTracker, type StageBreakdown } from './completions.js';
import { writeConfigYaml } from './config-file.js';
import { CpuMeter } from './cpu.js';

export interface TransportFloor {
  /** Jobs completed as soon as taken. */
  readonly immediate: TransportFloorResult | undefined;
  /** Jobs held as long as the service took per job of their shard (`holdMs`). */
  readonly held: (TransportFloorResult & { readonly holdMs: Record<string, number> }) | undefined;
}

export interface TransportFloorResult {
  readonly ratePerS: number;
  readonly messages: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly stages: StageBreakdown;
  /** Cores per process while the slice was sent: redis, ingestor, worker, bench (the load generator). */
  readonly cpuCores: Record<string, number>;
}

const FLOOR_KEYSPACE = 'bench_floor';
const FLOOR_PREFIX = '{benchfloor}';
/** The floor's ZMQ port: the service's plus this. */
const FLOOR_PORT_OFFSET = 7;

export async function measureTransportFloor(options: {
  readonly config: Readonly<SettlementConfig>;
  readonly keyspaces: BenchKeyspaces;
  readonly simulator: Simulator;
  readonly slice: StreamSlice;
  /** The service's mean job time per shard in the half-max step, ms. */
  readonly jobMeanMs: Record<string, number>;
  readonly machine: BenchMachine;
  readonly logDir: string;
}): Promise<TransportFloor> {
  const { slice, machine } = options;
  const run = async (what: string, holdMs: Record<string, number>): Promise<TransportFloorResult | undefined> => {
    await machine.waitForQuiet(`before the transport floor (${what})`);
    say(`transport floor (${what}): the half-max step's ${slice.to - slice.from} messages at ${slice.ratePerS}/s through ZMQ, an ingestor and BullMQ to a worker that settles nothing`);
    try {
      return await measure(options, holdMs, what);
    } catch (error) {
      // A reference that failed must not cost the run it is a reference for.
      say(`transport floor (${what}) failed, reported as missing: ${(error as Error).message}`);
      return undefined;
    } finally {
      await options.keyspaces.drop(FLOOR_KEYSPACE).catch(() => undefined);
    }
  };
  const immediate = await run('jobs done at once', {});
  const holdMs = Object.fromEntries(Object.entries(options.jobMeanMs).map(([shard, ms]) => [shard, Math.round(ms)]));
  const held = await run('jobs held as long as the service took', holdMs);
  return { immediate, held: held === undefined ? undefined : { ...held, holdMs } };
}

async function measure(options: Parameters<typeof measureTransportFloor>[0], holdMs: Record<string, number>, what: string): Promise<TransportFloorResult> {
  const { simulator, slice } = options;
  const config: Readonly<SettlementConfig> = {
    ...options.config,
    scylladb: { ...options.config.scylladb, keyspace: FLOOR_KEYSPACE },
    redis: { ...options.config.redis, prefix: FLOOR_PREFIX },
    zmq: { ...options.config.zmq, settlement_port: options.config.zmq.settlement_port + FLOOR_PORT_OFFSET },
    data_dir: path.join(options.config.data_dir, 'floor'),
  };
  await options.keyspaces.create(FLOOR_KEYSPACE);
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 3 });
  const queueNames = new MarketCatalog(config).shards.map(settlementQueueName);
  const tracker = new CompletionTracker(simulator);
  const apps: ChildApp[] = [];
  try {
    await clearPrefix(redis, config.redis.prefix);
    await redis.hset(ingestPositionKey(config.redis.prefix), positionBefore(simulator, slice.from));
    const env = { ...process.env, SETTLEMENT_CONFIG: writeConfigYaml(config, path.join(config.data_dir, 'bench-config.yaml')), LOG_LEVEL: 'warn', FLOOR_HOLD_MS: JSON.stringify(holdMs) };
    const ingestor = new ChildApp({ app: 'ingestor', name: 'floor-ingestor', env, logDir: options.logDir }).start();
    const worker = new ChildApp({ app: 'floor-worker', entry: 'bench/src/floor-worker.ts', name: 'floor-worker', env, logDir: options.logDir }).start();
    apps.push(ingestor, worker);
    await tracker.listen(queueNames, { url: config.redis.url }, config.redis.prefix);
    await waitFor('the floor ingestor and worker', async () => {
      const ingestorUp = (await redis.keys(`${config.redis.prefix}:heartbeat:*`)).some((k) => k.includes(':ingestor:'));
      return ingestorUp && (await redis.exists(`${config.redis.prefix}:floor-worker:ready`)) === 1;
    }, 60_000);
    const redisPid = await redisServerPid(redis);
    const cpu = new CpuMeter(() => ({ redis: redisPid, ingestor: ingestor.pid, worker: worker.pid, bench: process.pid }));
    const count = slice.to - slice.from;
    cpu.start();
    await sendPaced(count, (i, nowMs) => {
      tracker.markSent(slice.from + i, nowMs);
      return simulator.frameAt(slice.from + i, nowMs);
    }, { mode: 'push', endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`, ratePerSecond: slice.ratePerS, lingerMs: 60_000 });
    const cpuCores = cpu.stop();
    await waitFor('the transport floor to complete every job', () => tracker.settled >= count, 120_000);
    const latency = tracker.latency(slice.from, slice.to).summary();
    const result = { ratePerS: slice.ratePerS, messages: count, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, maxMs: latency.maxMs, stages: tracker.stages(slice.from, slice.to), cpuCores };
    say(`transport floor (${what}): p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms; cores: ${Object.entries(cpuCores).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    return result;
  } finally {
    await Promise.allSettled(apps.map((a) => a.stop('SIGTERM')));
    apps.forEach((a) => a.close());
    await tracker.close();
    await clearPrefix(redis, config.redis.prefix).catch(() => undefined);
    await redis.quit();
  }
}

/**
 * The ingestor's position (libs/domain ingestPositionKey) after the stream's first `from`
 * messages: each shard's last sequence, and "global", the last trade sequence (every one of
 * them is a trade shard's sequence, the stream's output_sequence).
 */
function positionBefore(simulator: Simulator, from: number): Record<string, string> {
  const last = new Map<string, bigint>();
  let global = 0n;
  for (let i = 0; i < from; i++) {
    const m = simulator.messages[i]!;
    if ((last.get(m.shard) ?? 0n) < m.seq) last.set(m.shard, m.seq);
    if (m.kind === 'trade' && m.seq > global) global = m.seq;
  }
  return { ...Object.fromEntries([...last].map(([shard, seq]) => [shard, seq.toString()])), global: global.toString() };
}
