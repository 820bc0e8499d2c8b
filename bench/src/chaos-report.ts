/** The chaos run's report: settings, figures, faults and checks, and whether the run passed. */
import type { ExpectedResult, SendReport, Simulator } from '@settlement/simulator';
import type { SettledRate } from './chaos-ring.js';
import type { FaultInjector } from './chaos-faults.js';
import type { PrivateStack } from './chaos-stack.js';
import type { ChaosCheck, ChaosOptions, ChaosReport, ProcessExit } from './chaos-types.js';

export interface ReportInput {
  readonly options: ChaosOptions;
  readonly stack: PrivateStack;
  readonly simulator: Simulator;
  /** The simulator's expectation (computed once: it walks the whole ledger). */
  readonly expected: ExpectedResult;
  /** Trades in the stream. */
  readonly trades: number;
  readonly injector: FaultInjector;
  readonly checks: ChaosCheck[];
  readonly sendReport: SendReport;
  readonly unexpectedExits: ProcessExit[];
  /** On a ring only. */
  readonly settledRate: SettledRate | undefined;
  readonly settlerClocks: Record<string, number>;
  /** When the run started (Date.now()). */
  readonly startedAt: number;
  readonly setupMs: number;
  readonly sendMs: number;
  readonly settledMs: number;
  readonly checkMs: number;
}

/**
 * The report. The run passes only when every check passed, every planned fault was done and
 * every frame was sent: a run that did less cannot pass.
 */
export function chaosReport(input: ReportInput): ChaosReport {
  const { options, stack, simulator, expected, injector, checks, settledRate } = input;
  const { ring, config } = stack;
  const fewFaults = injector.faults.length < options.faults;
  return {
    seed: options.seed,
    commitlog: stack.commitlog,
    redisPersistence: stack.redisPersistence,
    messages: simulator.messages.length,
    trades: input.trades,
    faults: injector.faults,
    injected: { duplicates: expected.counts.duplicatesInjected, swaps: expected.counts.swapsInjected, malformed: expected.counts.malformedInjected },
    checks,
    ok: checks.every((c) => c.ok) && !fewFaults && input.sendReport.sent === simulator.schedule.entries.length,
    unexpectedExits: input.unexpectedExits,
    setupMs: input.setupMs,
    sendMs: input.sendMs,
    settledMs: input.settledMs,
    checkMs: input.checkMs,
    elapsedMs: Date.now() - input.startedAt,
    ...(ring === undefined || settledRate === undefined
      ? {}
      : { ring: { hosts: ring.hosts, replicationFactor: ring.replicationFactor, consistency: config.scylladb.consistency, throughput: settledRate.report(injector.absences, input.settledMs, options.ratePerSecond) } }),
    ...(Object.keys(input.settlerClocks).length === 0 ? {} : { settlerClocks: input.settlerClocks }),
  };
}
