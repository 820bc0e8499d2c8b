/**
 * `npm run bench`'s flags: the usage text, and the values checked and named for the phases.
 * A bad value is named on stderr with exit 2, before anything starts.
 */
import { parseScriptArgs } from '@settlement/tools';
import { say } from './bench-log.js';
import { BENCH_RING_PORT } from './chaos-ring.js';
import { DURABILITY_NODE_PORT } from './durability-ceiling.js';

export const USAGE = `
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
  --history-query-rate 20         history page pairs (100 rows, service + raw) per second
                                  during the half-max step, alongside the balance queries
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

export interface BenchOptions {
  readonly stepSeconds: number;
  /**
   * The latency target is a p99 of a steady half-loaded system: a longer step, so that the
   * flushes and compactions of that load fall inside it at their own rate.
   */
  readonly halfStepSeconds: number;
  readonly rawSeconds: number;
  /**
   * The machine's noise moves a single service/raw ratio by ±20 % from run to run: the ratio is
   * the median of several closed-loop steps, each against the raw ceiling on its own messages.
   */
  readonly pairCount: number;
  /** Symbol shards; the funding shard comes on top. */
  readonly shardCount: number;
  readonly settlerCount: number;
  readonly batchMessages: number;
  /** The ingestor's batch.max_wait_ms; undefined: the config's. */
  readonly maxWaitMs: number | undefined;
  readonly userCount: number;
  readonly seed: number;
  /**
   * Balance query pairs (service + raw) per second while the half-max step runs: an open loop,
   * so the query load is the same whatever the latency, and does not take what the settling needs.
   */
  readonly queryPairsPerS: number;
  /**
   * History page pairs (a page of 100 rows, service + raw) per second during the half-max step,
   * alongside the balance queries: a page is ~100 rows to read and decode, so fewer of them.
   */
  readonly historyQueryPairsPerS: number;
  /**
   * The stream starts with every user's first deposits and locks: mostly funding events, on one
   * shard. Both paths settle this start untimed and are measured on what follows.
   */
  readonly warmUpMessages: number;
  /** The open-loop steps' offered rates: fractions of the raw ceiling, or messages/s with absoluteRates. */
  readonly rateSpecs: readonly number[];
  readonly absoluteRates: boolean;
  /** 1: the local stack; 3: a private three-node ring on ringPort. */
  readonly nodeCount: number;
  readonly ringPort: number;
  /** The durability ceiling is a single-node measurement: off on a ring. */
  readonly durabilityCeilingOn: boolean;
  readonly pin: boolean;
}

/** Parses and checks process.argv; --help prints USAGE and exits 0. */
export function parseBenchOptions(): BenchOptions {
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
    'history-query-rate': { type: 'string', default: '20' },
    pin: { type: 'boolean', default: false },
    'durability-ceiling': { type: 'string', default: 'on' },
    nodes: { type: 'string', default: '1' },
    'ring-port': { type: 'string', default: String(BENCH_RING_PORT) },
  });
  const intArg = (name: string, raw: string | undefined, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}, got ${raw}`);
    return n;
  };
  // Checked in this order, so the first bad flag is the one named.
  const stepSeconds = intArg('duration', args.duration, 3, 120);
  const halfStepSeconds = intArg('half-duration', args['half-duration'], 3, 300);
  const rawSeconds = intArg('raw-duration', args['raw-duration'], 3, 120);
  const pairCount = intArg('pairs', args.pairs, 1, 9);
  const shardCount = intArg('shards', args.shards, 1, 3);
  const settlerCount = intArg('settlers', args.settlers, 1, 8);
  const batchMessages = intArg('batch', args.batch, 1, 1000);
  const maxWaitMs = args['max-wait-ms'] === undefined ? undefined : intArg('max-wait-ms', args['max-wait-ms'], 0, 1000);
  const userCount = intArg('users', args.users, 10, 1_000_000);
  const seed = intArg('seed', args.seed, 0, 2 ** 31);
  const queryPairsPerS = intArg('query-rate', args['query-rate'], 1, 10_000);
  const historyQueryPairsPerS = intArg('history-query-rate', args['history-query-rate'], 1, 10_000);
  const warmUpMessages = intArg('warm-up', args['warm-up'] ?? String(userCount * 10), 0, 10_000_000);
  const rateSpecs = (args.rate ?? args.rates!).split(',').map((r) => Number(r));
  if (rateSpecs.some((r) => !(r > 0))) fail(`--rates must be positive numbers, got ${args.rates}`);
  if (args['durability-ceiling'] !== 'on' && args['durability-ceiling'] !== 'off') fail(`--durability-ceiling must be on or off, got ${args['durability-ceiling']}`);
  const nodeCount = intArg('nodes', args.nodes, 1, 3);
  if (nodeCount === 2) fail('--nodes must be 1 or 3');
  const ringPort = intArg('ring-port', args['ring-port'], 3066, 65_535);
  return {
    stepSeconds,
    halfStepSeconds,
    rawSeconds,
    pairCount,
    shardCount,
    settlerCount,
    batchMessages,
    maxWaitMs,
    userCount,
    seed,
    queryPairsPerS,
    historyQueryPairsPerS,
    warmUpMessages,
    rateSpecs,
    absoluteRates: args.absolute || args.rate !== undefined,
    nodeCount,
    ringPort,
    durabilityCeilingOn: args['durability-ceiling'] === 'on' && nodeCount === 1,
    pin: args.pin,
  };
}

function fail(message: string): never {
  say(message);
  process.exit(2);
}
