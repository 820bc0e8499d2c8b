/**
 * One measured step of the service: a slice of the stream sent over ZMQ (paced, unpaced or
 * closed-loop), then waited for until settled, with its throughput, latency per message and per
 * stage, queue depth, CPU per process, Cassandra's GC pauses and the settlers' batch timings.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sendPaced, type Simulator } from '@settlement/simulator';
import { waitFor } from '@settlement/tools';
import { say } from './bench-log.js';
import type { BenchService } from './bench-service.js';
import type { StageBreakdown } from './completions.js';
import { gcPausesBetween, type GcPauses } from './gc-pauses.js';
import { round } from './latency.js';
import { readSettlerTimings, timingsBetween, type ShardTimings } from './settler-timings.js';

/** How often a settler process publishes its metrics (startSettler's default heartbeat), ms. */
const SETTLER_HEARTBEAT_MS = 5_000;

export interface StepResult {
  label: string;
  offeredPerS: number;
  achievedOfferPerS: number;
  settledPerS: number;
  tradesShare: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  queueDepthMax: number;
  /** The step's messages: stream positions [streamFrom, streamTo). */
  streamFrom: number;
  streamTo: number;
  cpuCores: Record<string, number>;
  /** Cassandra's GC pauses during the step (local stack only). */
  cassandraGc: GcPauses | undefined;
  stages: StageBreakdown;
  /** Per shard, from the settlers' own histograms: batches, mean batch write and job time. */
  shards: ShardTimings;
}

/** Never more than `unsettledMax` messages sent and not yet settled, for `durationMs`. */
export interface ClosedLoop {
  readonly unsettledMax: number;
  readonly durationMs: number;
}

/** Runs the steps one after the other along the simulator's stream. */
export class StepRunner {
  /** Messages of the stream sent so far: the next step starts there. */
  sentSoFar = 0;

  constructor(
    private readonly service: BenchService,
    private readonly simulator: Simulator,
    /** Cassandra's GC log (local stack only). */
    private readonly gcLog: string | undefined,
  ) {}

  /**
   * One step: `count` messages at `rate` (0: unpaced); `during` runs alongside, aborted when the
   * sending ends. With `closedLoop`, unpaced but within its bound of unsettled messages.
   */
  async run(label: string, rate: number, count: number, during?: (signal: AbortSignal) => Promise<void>, closedLoop?: ClosedLoop): Promise<StepResult> {
    const { config, queues, redis, tracker, cpu } = this.service;
    const simulator = this.simulator;
    const from = this.sentSoFar;
    let depthMax = 0;
    const depthTimer = setInterval(() => {
      void Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')))
        .then((counts) => {
          const depth = counts.reduce((s, c) => s + Object.values(c).reduce((a, b) => a + b, 0), 0);
          depthMax = Math.max(depthMax, depth);
        })
        .catch(() => undefined);
    }, 500);
    // The load generator's own garbage is collected now, not in the middle of a measured step.
    collectGarbage();
    const timingsBefore = await readSettlerTimings(redis, config.redis.prefix);
    const abort = new AbortController();
    const sideTask = during?.(abort.signal);
    cpu.start();
    const startedMs = Date.now();
    const report = await sendPaced(count, (i, nowMs) => {
      tracker.markSent(from + i, nowMs);
      return simulator.frameAt(from + i, nowMs);
    }, {
      mode: 'push',
      endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`,
      ratePerSecond: rate,
      lingerMs: 60_000,
      // Every earlier message is settled when a step starts (see below), so what is unsettled
      // now is this step's: sent minus settled since.
      ...(closedLoop === undefined ? {} : { window: (sent: number) => closedLoop.unsettledMax - (from + sent - tracker.settled), signal: AbortSignal.timeout(closedLoop.durationMs) }),
    });
    const endedMs = Date.now();
    const cpuCores = cpu.stop();
    abort.abort();
    await sideTask;
    this.sentSoFar += report.sent;
    const sentSoFar = this.sentSoFar;
    // Wait for this step's messages to settle before the next one, so steps do not mix.
    await waitFor(`step ${label} to settle`, () => tracker.unsettledBefore(sentSoFar) === 0, 180_000);
    clearInterval(depthTimer);
    // The settlers publish their histograms with each heartbeat: wait for one after the step.
    await new Promise((resolve) => setTimeout(resolve, SETTLER_HEARTBEAT_MS + 200));
    const shards = timingsBetween(timingsBefore, await readSettlerTimings(redis, config.redis.prefix));
    const warmupMs = Math.min(2000, (endedMs - startedMs) / 4);
    // Throughput: completions while the step was being offered (after a warm-up), or, when
    // a backlog built up, while it drained at full speed.
    const windowStart = startedMs + warmupMs;
    const settledInWindow = tracker.settledBetween(windowStart, endedMs);
    const latency = tracker.latency(from, sentSoFar).summary();
    const stages = tracker.stages(from, sentSoFar);
    const trades = simulator.messages.slice(from, sentSoFar).filter((m) => m.kind === 'trade').length;
    const result: StepResult = {
      label,
      offeredPerS: rate,
      achievedOfferPerS: Math.round(report.achievedRatePerSecond),
      settledPerS: Math.round((settledInWindow * 1000) / (endedMs - windowStart)),
      tradesShare: round(trades / Math.max(1, report.sent), 3),
      p50Ms: latency.p50Ms,
      p99Ms: latency.p99Ms,
      maxMs: latency.maxMs,
      queueDepthMax: depthMax,
      streamFrom: from,
      streamTo: sentSoFar,
      cpuCores,
      cassandraGc: this.gcLog === undefined ? undefined : gcPausesBetween(this.gcLog, startedMs, endedMs),
      stages,
      shards,
    };
    say(`step ${label}: offered ${rate}/s (achieved ${result.achievedOfferPerS}/s), settled ${result.settledPerS}/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max queue depth ${depthMax}`);
    return result;
  }
}

let gc: (() => void) | undefined;

/** A full garbage collection of this process (the load generator between measured steps, an export between formats). */
export function collectGarbage(): void {
  gc ??= (() => {
    v8.setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();
  gc();
}
