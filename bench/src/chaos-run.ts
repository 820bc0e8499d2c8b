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
 *
 * This file only runs the phases in order; each lives in its own module:
 * - chaos-types.ts: the options, fault records, checks and report;
 * - chaos-stack.ts: the private Redis and Cassandra (or ring, chaos-ring.ts), config, harness connections;
 * - chaos-stream.ts: the simulator with exactly the wanted trades, sent at the offered rate;
 * - chaos-supervisor.ts: the processes under a supervisor that restarts any that exits by itself;
 * - chaos-fault-plan.ts: which faults and when, from the seed; chaos-faults.ts: injecting them;
 * - chaos-watermarks.ts: the stored watermarks read around a Cassandra fault;
 * - chaos-settle-wait.ts: the wait for every shard to settle;
 * - chaos-checks.ts, chaos-dead-letters.ts: the end checks; chaos-report.ts: the report.
 */
import path from 'node:path';
import type cassandra from 'cassandra-driver';
import { createScyllaClient, scyllaOptionsFromConfig } from '@settlement/scylla';
import { Rng } from '@settlement/simulator';
import { SettledRate } from './chaos-ring.js';
import { stopAndCheckProcesses, storeChecks } from './chaos-checks.js';
import { DEFAULT_CASSANDRA_KILLS, FAULT_KINDS, faultPlan, RING_FAULT_KINDS } from './chaos-fault-plan.js';
import { FaultInjector } from './chaos-faults.js';
import { chaosReport } from './chaos-report.js';
import { waitUntilSettled } from './chaos-settle-wait.js';
import { closeHarness, startPrivateStack, stopStores } from './chaos-stack.js';
import { chaosSimulator, PacedStream } from './chaos-stream.js';
import { startApps, waitForHeartbeats } from './chaos-supervisor.js';
import type { ChaosOptions, ChaosReport } from './chaos-types.js';
import { WatermarkProbe } from './chaos-watermarks.js';

// The run's API, wherever each part lives: chaos.ts and chaos.int.test.ts import it from here.
export { COMMITLOG_MODES, cassandraYamlOverrides, type CommitlogMode } from './commitlog.js';
export { DEFAULT_CASSANDRA_KILLS, FAULT_KINDS, faultPlan, RING_FAULT_KINDS, type FaultKind } from './chaos-fault-plan.js';
export type { ChaosCheck, ChaosOptions, ChaosReport, FaultRecord, ProcessExit } from './chaos-types.js';
export { describeWatermarks } from './chaos-watermarks.js';

/**
 * The whole run, phase by phase: private stack, stream and processes up, faults while the
 * stream is sent, the wait for every shard to settle, the end checks, the report. Whatever
 * happens once the processes are started, they and the private stack are stopped.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const startedAt = Date.now();
  const log = options.logger;
  // One seeded generator for the whole fault schedule (the simulator's, seeded the same way).
  const rng = new Rng(options.seed);
  const random = (): number => rng.next();
  const stack = await startPrivateStack(options);
  const { config, ring } = stack;
  const simulator = chaosSimulator(options, config);
  const replay = await simulator.serveReplay(config.zmq.replay_endpoint!);
  // The run's clock: restarted when the stream starts, so fault times read from the stream's start.
  let streamStartedAt = Date.now();
  const sinceStreamMs = () => Date.now() - streamStartedAt;
  const apps = startApps({
    configFile: stack.configFile,
    logDir: path.join(options.workDir, 'logs'),
    settlers: options.settlers,
    settlerClockOffsetsS: options.settlerClockOffsetsS,
    clockMs: sinceStreamMs,
    log,
    onStart: (name, pid) => stack.leftovers.recordProcess(pid, name),
  });
  let injector: FaultInjector | undefined;
  const abandon = () => {
    log.warn('chaos run abandoned: nothing is started again');
    apps.all.forEach((a) => a.halt());
    injector?.halt();
  };
  options.signal?.addEventListener('abort', abandon, { once: true });
  const watermarks = new WatermarkProbe(config);
  let client: cassandra.Client | undefined;
  try {
    await waitForHeartbeats(stack.harnessRedis, config.redis.prefix, { ingestor: 1, settler: options.settlers, reconciler: 1 }, 120_000);
    streamStartedAt = Date.now();
    const setupMs = streamStartedAt - startedAt;
    const expectedSendMs = (simulator.schedule.entries.length / options.ratePerSecond) * 1000;
    const stream = new PacedStream(simulator, config, options.ratePerSecond, sinceStreamMs, log);

    const plan = faultPlan(random, options.faults, options.kinds ?? (ring ? RING_FAULT_KINDS : FAULT_KINDS), options.cassandraKills ?? DEFAULT_CASSANDRA_KILLS);
    // On a ring: the settled rate every second (from the watermarks), and when a node was away.
    const messagesPerFrame = simulator.messages.length / Math.max(1, simulator.schedule.entries.length);
    const settledRate = ring === undefined ? undefined : new SettledRate(simulator.messages, () => watermarks.read(900), () => Math.round(stream.framesSent * messagesPerFrame), sinceStreamMs);
    settledRate?.start();
    injector = new FaultInjector({ random, stack, apps, watermarks, sinceStreamMs, log, onFault: options.onFault });
    await injector.run(plan, expectedSendMs);
    const sendReport = await stream.done;

    const expected = simulator.expected();
    client = createScyllaClient(scyllaOptionsFromConfig(config));
    await client.connect();
    const settled = await waitUntilSettled(client, expected, stack.catalog, {
      settleTimeoutMs: options.settleTimeoutMs ?? 600_000,
      stallTimeoutMs: options.stallTimeoutMs ?? 120_000,
      sinceStreamMs,
      log,
    });
    settledRate?.stop();
    const checksStartedAt = Date.now();
    const { checks, trades } = await storeChecks({
      settled,
      client,
      config,
      catalog: stack.catalog,
      queues: stack.queues,
      deadLetterQueue: stack.deadLetterQueue,
      simulator,
      expected,
      faults: injector.faults,
      malformedSentAtMs: stream.malformedSentAtMs,
      log,
    });
    const checkMs = Date.now() - checksStartedAt;
    const processes = await stopAndCheckProcesses(apps.all);
    checks.push(...processes.checks);

    return chaosReport({
      options,
      stack,
      simulator,
      expected,
      trades,
      injector,
      checks,
      sendReport,
      unexpectedExits: processes.unexpectedExits,
      settledRate,
      settlerClocks: apps.settlerClocks,
      startedAt,
      setupMs,
      sendMs: stream.sendMs,
      settledMs: settled.settledMs,
      checkMs,
    });
  } finally {
    options.signal?.removeEventListener('abort', abandon);
    await Promise.allSettled(apps.all.map((a) => a.stop(20_000)));
    apps.all.forEach((a) => a.app.close());
    await client?.shutdown().catch(() => undefined);
    await watermarks.shutdown().catch(() => undefined);
    await closeHarness(stack);
    await replay.close().catch(() => undefined);
    await simulator.close();
    await stopStores(stack);
    // Whatever did not stop (a store that ignored its stop): killed, and the record cleared.
    const left = await stack.leftovers.reap();
    if (left.length > 0) log.warn({ killed: left }, 'killed processes of this run that were still running after its clean-up');
  }
}
