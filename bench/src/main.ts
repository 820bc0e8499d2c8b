/**
 * npm run bench: the raw Cassandra ceiling and the whole service, measured in the same run.
 *
 *  1. raw ceiling: the settler's own LOGGED BATCH statements for a simulated stream, precomputed,
 *     executed straight from cassandra-driver with one batch in flight per shard;
 *  2. the service: simulator → ZMQ → ingestor → BullMQ → settler processes → Cassandra at rising
 *     offered rates (fractions of the raw ceiling), then in closed-loop steps, each followed by
 *     the raw ceiling on its own messages (the ratio is the median of these pairs), then at half
 *     the maximum reached, with ZMQ-to-settled latency per message, queue depth, CPU per
 *     process, balance queries (service vs raw single-partition read) and a user's history page
 *     of 100 rows (service vs raw read of the same partition) idle and under load;
 *  3. checks the settled balances against the simulator's expectation: a broken run cannot look
 *     fast, and exits 1;
 *  4. the cost of database-level durability (durability-ceiling.ts): the raw ceiling on the
 *     start-of-run ceiling's messages on a private second Cassandra (own port and data folder,
 *     started for this phase only), with the periodic commit log users run and with the commit
 *     log synced before each acknowledgement (`commitlog_sync: batch`, window 2 ms, the chaos
 *     run's hardened mode); `--durability-ceiling off` skips it.
 * Prints a table, writes bench/results/bench-<time>.json and an SVG chart. Flags: USAGE in
 * bench-options.ts (`npm run bench -- --help`).
 *
 * main() below is the sequence of these phases; each lives in a module of its own:
 *   bench-options   the flags and their checks          bench-stack     the stack or ring, the keyspaces
 *   bench-machine   Cassandra's pid, quiet, --pin       bench-raw       the raw ceilings, latency reference, durability
 *   bench-service   the ingestor and settler processes  bench-step      one measured step of the service
 *   bench-phases    the service's steps in order        bench-summary   the JSON summary, ratio, targets, chart
 *   bench-report    the printed tables and lines
 */
import { MarketCatalog } from '@settlement/domain';
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { benchConfig } from './bench-config.js';
import { say } from './bench-log.js';
import { benchMachine } from './bench-machine.js';
import { parseBenchOptions } from './bench-options.js';
import { planService, runServicePhases, type ServiceRun } from './bench-phases.js';
import { RawPath } from './bench-raw.js';
import { printReport } from './bench-report.js';
import { startService } from './bench-service.js';
import { BenchKeyspaces, startStack } from './bench-stack.js';
import { StepRunner } from './bench-step.js';
import { halfMaxStep, summarize, writeResults } from './bench-summary.js';
import { round } from './latency.js';
import { closedLoopWindowMessages } from './raw-ceiling.js';
import { measureTransportFloor } from './transport-floor.js';

const options = parseBenchOptions();

async function main(): Promise<void> {
  const benchStartedMs = Date.now();
  const ring = await startStack(options);
  const rawConfig = benchConfig(options, ring, 'bench_raw', '{benchraw}');
  const config = benchConfig(options, ring, 'bench_svc', '{bench}');
  const catalog = new MarketCatalog(config);
  const keyspaces = new BenchKeyspaces(config, rawConfig, ring);
  await keyspaces.create('bench_svc');
  const machine = benchMachine(config, ring, options.pin);
  // The closed-loop step's bound on messages sent and not settled; the raw ceilings write the
  // stream in order within the same bound.
  const unsettledMax = closedLoopWindowMessages(options.batchMessages, options.shardCount + 1);
  const rawPath = new RawPath({ options, rawConfig, keyspaces, machine, unsettledMax });

  // 1. Raw ceiling.
  const startRaw = await rawPath.measureStartOfRun();
  await machine.waitForQuiet('after the raw ceiling');
  const { raw } = startRaw;
  say(`raw ceiling: ${Math.round(raw.messagesPerS)} messages/s (${Math.round(raw.tradesPerS)} trades/s), ${raw.batches} batches of ~${round(raw.statementsPerBatchAvg, 0)} statements`);

  // 2. The service, and 3. the checks of its balances.
  const plan = planService(options, raw.messagesPerS);
  say(`service: generating ${plan.totalMessages} messages`);
  const simulator = createSimulator({ market: marketFromConfig(config), messages: plan.totalMessages, users: options.userCount, seed: options.seed });
  const service = await startService({ config, settlerCount: options.settlerCount, simulator, machine, benchStartedMs });
  let run: ServiceRun;
  try {
    await service.waitUntilUp();
    const steps = new StepRunner(service, simulator, machine.gcLog);
    run = await runServicePhases({ options, plan, steps, service, simulator, catalog, machine, rawPath, unsettledMax });
  } finally {
    await service.stop();
  }

  // 4. The latency references, with the service stopped: Cassandra alone, then the transport alone.
  const rawLatency = await rawPath.measureLatencyReference(simulator, catalog, run.halfSlice);
  const jobMeanMs = Object.fromEntries(Object.entries(halfMaxStep(run).shards).map(([shard, t]) => [shard, t.jobMeanMs]));
  const transportFloor = await measureTransportFloor({ config, keyspaces, simulator, slice: run.halfSlice, jobMeanMs, machine, logDir: service.logDir });
  // The admin connection made the keyspaces, the raw latency reference's last.
  await keyspaces.close();

  // 5. The cost of database-level durability.
  const durability = await rawPath.measureDurabilityCost(config.data_dir);

  // Report.
  const outcome = { benchStartedMs, options, config, ring, startRaw, run, rawLatency, transportFloor, durability };
  const summary = summarize(outcome);
  const jsonFile = writeResults(outcome, summary);
  printReport(outcome, summary, jsonFile);
  const { checks } = run;
  if (checks.mismatches.length > 0 || !checks.conservation) {
    process.stderr.write(`[bench] FAILED: settled balances differ from the expectation\n${checks.mismatches.join('\n')}\n`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] error: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
