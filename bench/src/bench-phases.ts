/**
 * The service's phases, in order: warm-up, open-loop steps at rising offered rates, closed-loop
 * steps each paired with the raw ceiling on its messages, the half-max step with balance and
 * history queries under load, the rest of the stream, idle balance and history queries, and the
 * balance checks.
 */
import type { MarketCatalog } from '@settlement/domain';
import type { Simulator } from '@settlement/simulator';
import { measureBalanceQueries, type BalanceQueryResult } from './balance-queries.js';
import { say } from './bench-log.js';
import type { BenchMachine } from './bench-machine.js';
import type { BenchOptions } from './bench-options.js';
import type { RawPath, StreamSlice } from './bench-raw.js';
import type { BenchService } from './bench-service.js';
import type { StepResult, StepRunner } from './bench-step.js';
import { checkBalances } from './check-balances.js';
import { historyRowsByUser, measureHistoryQueries, pickHistoryTargets, type HistoryQueryResult, type HistoryTarget } from './history-queries.js';
import { round } from './latency.js';
import type { RawCeilingResult } from './raw-ceiling.js';
import { sequencedMessages } from './stream.js';

/** How many messages each phase sends, from the start-of-run raw ceiling. */
export interface ServicePlan {
  /** The open-loop steps' rates, messages/s. */
  readonly offered: readonly number[];
  readonly closedLoopMessages: number;
  /** The whole stream: every phase's messages, the half-max step's at most. */
  readonly totalMessages: number;
}

export function planService(options: BenchOptions, rawMessagesPerS: number): ServicePlan {
  const offered = options.rateSpecs.map((r) => Math.round(options.absoluteRates ? r : r * rawMessagesPerS));
  // The closed-loop step cannot settle faster than the raw path writes (if it did, it would end early).
  const closedLoopMessages = Math.ceil(rawMessagesPerS) * options.stepSeconds;
  const halfStepUpperBound = Math.ceil(Math.max(...offered, rawMessagesPerS) * 0.5) * options.halfStepSeconds;
  const totalMessages = options.warmUpMessages + offered.reduce((sum, r) => sum + r * options.stepSeconds, 0) + options.pairCount * closedLoopMessages + halfStepUpperBound;
  return { offered, closedLoopMessages, totalMessages };
}

/** A closed-loop step and the raw ceiling measured right after it on the same messages. */
export interface RatioPair {
  step: string;
  serviceMessagesPerS: number;
  raw: RawCeilingResult;
  rawCpuCores: Record<string, number>;
  /** serviceMessagesPerS / raw.messagesPerS. */
  ratio: number;
}

export interface BalanceChecks {
  balancesChecked: number;
  /** The first 20. */
  mismatches: string[];
  conservation: boolean;
}

export interface ServiceRun {
  /** The open-loop, closed-loop and half-max steps (not the warm-up and the rest). */
  readonly results: StepResult[];
  readonly pairs: RatioPair[];
  /** The step that settled the most messages per second. */
  readonly maxStep: StepResult;
  readonly halfSlice: StreamSlice;
  readonly underLoad: BalanceQueryResult | undefined;
  readonly idle: BalanceQueryResult | undefined;
  /** A trade history page of 100 rows, service vs raw read, during the half-max step (history-queries.ts). */
  readonly historyUnderLoad: HistoryQueryResult | undefined;
  readonly historyIdle: HistoryQueryResult | undefined;
  readonly checks: BalanceChecks;
}

export interface ServicePhases {
  readonly options: BenchOptions;
  readonly plan: ServicePlan;
  readonly steps: StepRunner;
  readonly service: BenchService;
  readonly simulator: Simulator;
  readonly catalog: MarketCatalog;
  readonly machine: BenchMachine;
  readonly rawPath: RawPath;
  /** The closed-loop steps' bound on messages sent and not settled. */
  readonly unsettledMax: number;
}

/** Every phase of the service, on a service that is up. */
export async function runServicePhases(p: ServicePhases): Promise<ServiceRun> {
  const { options, plan, steps, machine } = p;
  if (options.warmUpMessages > 0) {
    say(`warm-up: ${options.warmUpMessages} messages, as fast as they settle`);
    await steps.run('warm-up', 0, options.warmUpMessages);
  }
  const results: StepResult[] = [];
  for (const [i, rate] of plan.offered.entries()) {
    results.push(await steps.run(options.absoluteRates ? `${rate}/s` : `${options.rateSpecs[i]}x raw`, rate, rate * options.stepSeconds));
  }
  const pairs = await runClosedLoopPairs(p, results);
  const maxStep = results.reduce((a, b) => (b.settledPerS > a.settledPerS ? b : a));
  // The steps past saturation leave Cassandra compacting their backlog for a while; the
  // latency target is about a steady half-loaded system, not that aftermath.
  await machine.waitForQuiet('before the half-max step');
  const { halfSlice, underLoad, historyUnderLoad } = await runHalfMaxStep(p, maxStep, results);
  // The rest of the stream, so the final balances can be checked against the expectation.
  if (steps.sentSoFar < plan.totalMessages) await steps.run('rest', 0, plan.totalMessages - steps.sentSoFar);
  // Idle means idle: not while Cassandra still compacts what the steps wrote.
  await machine.waitForQuiet('before the idle balance queries');
  const { service } = p;
  const idle = await measureBalanceQueries({ client: service.client, keyspace: service.config.scylladb.keyspace, repository: service.balances, users: p.simulator.stream.users, durationMs: 8_000, pairsMax: 3_000 });
  // After the balance queries, so theirs are measured as before; back to back as theirs.
  const historyIdle = await measureHistoryQueries({ client: service.client, keyspace: service.config.scylladb.keyspace, catalog: p.catalog, targets: await historyTargets(p), durationMs: 8_000, pairsMax: 1_000 });
  // Checks: every balance as the simulator expects, and conservation per asset.
  const result = await checkBalances(service.balances, p.simulator.expected());
  const checks = { balancesChecked: result.checked, mismatches: result.mismatches.slice(0, 20), conservation: result.conservationBroken.length === 0 };
  return { results, pairs, maxStep, halfSlice, underLoad, idle, historyUnderLoad, historyIdle, checks };
}

/** The users whose history pages are read: from what the steps have settled so far, looked up untimed. */
async function historyTargets(p: ServicePhases): Promise<HistoryTarget[]> {
  const { service } = p;
  const rows = historyRowsByUser(p.simulator.messages, p.steps.sentSoFar, service.config.fee_account_user_id);
  const targets = await pickHistoryTargets(service.client, service.config.scylladb.keyspace, [...p.catalog.markets.keys()], rows);
  const rowsOf = targets.map((t) => t.rows);
  say(`history pages: ${targets.length} users (${rowsOf.length === 0 ? 'none with history' : `${Math.min(...rowsOf)}-${Math.max(...rowsOf)} rows in the partition read first`})`);
  return targets;
}

/**
 * The open-loop steps past saturation keep the ingestor and the load generator busy with
 * messages that only queue up, which takes CPU from the settling. A closed-loop step offers
 * exactly what settles: unpaced, with a bounded number of messages in flight (unsettledMax),
 * the way a sustained maximum is measured.
 *
 * Each is followed by the raw ceiling on its very messages, right after it (the service idle),
 * so Cassandra holds what that step left, as it did for the service: the stream starts
 * funding-heavy (deposits) and its share of trades, which write more rows, grows along it, so
 * the first ceiling (on the messages right after the warm-up) is for cheaper messages than the
 * ones the service settles later in the run.
 * Cassandra is let settle before each closed-loop step as before each raw ceiling: the
 * open-loop steps past saturation leave it compacting their backlog (a first closed-loop step
 * run straight after them settled 0.63 of its ceiling, the next two 0.79 and 0.83).
 */
async function runClosedLoopPairs(p: ServicePhases, results: StepResult[]): Promise<RatioPair[]> {
  const { options, plan, steps, machine } = p;
  const pairs: RatioPair[] = [];
  for (let pair = 1; pair <= options.pairCount; pair++) {
    await machine.waitForQuiet(`before closed-loop step ${pair}`);
    const step = await steps.run(pair === 1 ? 'max (closed loop)' : `max (closed loop) ${pair}`, 0, plan.closedLoopMessages, undefined, {
      unsettledMax: p.unsettledMax,
      durationMs: options.stepSeconds * 1000,
    });
    results.push(step);
    if (step.streamTo <= step.streamFrom) continue;
    const warmFrom = Math.max(0, step.streamFrom - options.warmUpMessages);
    say(`raw ceiling on the ${step.label} step's ${step.streamTo - step.streamFrom} messages (after ${step.streamFrom - warmFrom} untimed)`);
    try {
      const same = await p.rawPath.measureCeiling(sequencedMessages(p.simulator, p.catalog, step.streamTo, warmFrom), step.streamFrom - warmFrom, `raw ceiling on the ${step.label} step's messages`);
      const ratio = step.settledPerS / same.raw.messagesPerS;
      pairs.push({ step: step.label, serviceMessagesPerS: step.settledPerS, raw: same.raw, rawCpuCores: same.rawCpuCores, ratio: round(ratio, 3) });
      say(`raw ceiling on the same messages: ${Math.round(same.raw.messagesPerS)} messages/s (${Math.round(same.raw.tradesPerS)} trades/s): ratio ${round(ratio, 3)}`);
    } catch (error) {
      say(`raw ceiling on the same messages failed, reported as missing: ${(error as Error).message}`);
    }
  }
  return pairs;
}

/**
 * The step at half the highest settled rate, with balance queries and history pages (each
 * service vs raw read) alongside, each paced at its own rate.
 */
async function runHalfMaxStep(
  p: ServicePhases,
  maxStep: StepResult,
  results: StepResult[],
): Promise<{ halfSlice: StreamSlice; underLoad: BalanceQueryResult | undefined; historyUnderLoad: HistoryQueryResult | undefined }> {
  const { options, plan, steps, service } = p;
  const halfRate = Math.round(maxStep.settledPerS / 2);
  const halfCount = Math.min(halfRate * options.halfStepSeconds, plan.totalMessages - steps.sentSoFar);
  const users = p.simulator.stream.users;
  const halfSlice = { from: steps.sentSoFar, to: steps.sentSoFar + halfCount, ratePerS: halfRate };
  let underLoad: BalanceQueryResult | undefined;
  let historyUnderLoad: HistoryQueryResult | undefined;
  // Looked up before the step, with the service idle: what the steps before settled.
  const targets = await historyTargets(p);
  results.push(
    await steps.run('half max', halfRate, halfCount, async (signal) => {
      [underLoad, historyUnderLoad] = await Promise.all([
        measureBalanceQueries({
          client: service.client,
          keyspace: service.config.scylladb.keyspace,
          repository: service.balances,
          users,
          durationMs: options.halfStepSeconds * 1000,
          pairsMax: 1_000_000,
          pairsPerS: options.queryPairsPerS,
          signal,
        }),
        measureHistoryQueries({
          client: service.client,
          keyspace: service.config.scylladb.keyspace,
          catalog: p.catalog,
          targets,
          durationMs: options.halfStepSeconds * 1000,
          pairsMax: 1_000_000,
          pairsPerS: options.historyQueryPairsPerS,
          signal,
        }),
      ]);
    }),
  );
  return { halfSlice, underLoad, historyUnderLoad };
}
