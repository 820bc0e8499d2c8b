/**
 * The run's results as data: the summary (bench/results/bench-<time>.json, `latest.json`), the
 * service/raw ratio and the targets, and the SVG chart next to it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import type { SettlementConfig } from '@settlement/config';
import { ROOT, type LocalRing } from '@settlement/tools';
import type { BenchOptions } from './bench-options.js';
import type { ServiceRun } from './bench-phases.js';
import type { RawCeilingMeasurement, RawLatencyReference } from './bench-raw.js';
import type { StepResult } from './bench-step.js';
import { renderChart, type ChartPoint } from './chart.js';
import type { DurabilityCeilingResult } from './durability-ceiling.js';
import { round } from './latency.js';
import type { TransportFloor } from './transport-floor.js';

/** Everything one run measured, for the summary and the printed report. */
export interface BenchOutcome {
  readonly benchStartedMs: number;
  readonly options: BenchOptions;
  /** The service's config. */
  readonly config: Readonly<SettlementConfig>;
  readonly ring: LocalRing | undefined;
  /** The start-of-run raw ceiling. */
  readonly startRaw: RawCeilingMeasurement;
  readonly run: ServiceRun;
  readonly rawLatency: RawLatencyReference | undefined;
  /** The half-max step's messages through ZMQ, an ingestor and BullMQ to a worker that settles nothing. */
  readonly transportFloor: TransportFloor;
  readonly durability: DurabilityCeilingResult | undefined;
}

export type BenchSummary = ReturnType<typeof summarize>;

/** The half-max step: the latency target's. */
export function halfMaxStep(run: ServiceRun): StepResult {
  return run.results.find((r) => r.label === 'half max')!;
}

export function summarize(o: BenchOutcome) {
  const { options, ring, run } = o;
  const { raw, rawCpuCores } = o.startRaw;
  const { maxStep, pairs, idle, underLoad } = run;
  const half = halfMaxStep(run);
  // The target ratio: the median of the closed-loop steps' ratios to the ceiling on their own
  // messages; without any, the best step against the first ceiling.
  const ratioToFirstRaw = maxStep.settledPerS / raw.messagesPerS;
  const ratio = pairs.length === 0 ? ratioToFirstRaw : median(pairs.map((p) => p.ratio));
  const rawHalf = o.rawLatency;
  const serviceCpu = halfMaxServiceCpu(half);
  // The targets of issue 19 and the developers' guide, each against the raw path of this run.
  const targets = {
    ratioMedianAtLeast090: ratio >= 0.9,
    noPairUnder080: pairs.length > 0 && pairs.every((p) => p.ratio >= 0.8),
    halfMaxP50WithinRawPlus10Ms: rawHalf !== undefined && half.p50Ms <= rawHalf.p50Ms + 10,
    halfMaxP99Within2xRaw: rawHalf !== undefined && half.p99Ms <= 2 * rawHalf.p99Ms,
    serviceCpuAtHalfMaxAtMost04Cores: serviceCpu.totalCores <= 0.4,
    balanceIdleP99Under5Ms: (idle?.service.p99Ms ?? Infinity) < 5,
    balanceUnderLoadWithin12xRaw: (underLoad?.service.p99Ms ?? Infinity) <= 1.2 * (underLoad?.raw.p99Ms ?? 0),
  };
  return {
    startedAt: new Date(o.benchStartedMs).toISOString(),
    machine: { cores: cpus().length, node: process.version },
    ...(ring === undefined ? {} : { ring: { hosts: ring.hosts, replicationFactor: ring.replicationFactor, consistency: o.config.scylladb.consistency, heapMb: ring.state.nodes[0]?.heapMb } }),
    settings: {
      nodes: options.nodeCount,
      pinned: options.pin,
      stepSeconds: options.stepSeconds,
      halfStepSeconds: options.halfStepSeconds,
      rawSeconds: options.rawSeconds,
      queryPairsPerS: options.queryPairsPerS,
      historyQueryPairsPerS: options.historyQueryPairsPerS,
      shards: options.shardCount + 1,
      symbolShards: options.shardCount,
      settlers: options.settlerCount,
      batchMessages: options.batchMessages,
      maxWaitMs: o.config.batch.max_wait_ms,
      users: options.userCount,
      seed: options.seed,
    },
    raw: { ...raw, cpuCores: rawCpuCores },
    /**
     * The raw ceiling with the periodic commit log (Cassandra's default, as the stack runs) and
     * with commitlog_sync: batch (2 ms), on a private second node: the cost of database-level
     * durability. Absent with --durability-ceiling off.
     */
    durabilityCeiling: o.durability === undefined ? (options.durabilityCeilingOn ? 'failed' : 'off') : o.durability,
    ratioPairs: pairs.map((p) => ({ step: p.step, serviceMessagesPerS: p.serviceMessagesPerS, ratio: p.ratio, raw: { ...p.raw, cpuCores: p.rawCpuCores } })),
    steps: run.results,
    maxSettledMessagesPerS: maxStep.settledPerS,
    maxSettledTradesPerS: Math.round(maxStep.settledPerS * maxStep.tradesShare),
    serviceToRawRatio: round(ratio, 3),
    serviceToFirstRawRatio: round(ratioToFirstRaw, 3),
    halfMaxLatency: { p50Ms: half.p50Ms, p99Ms: half.p99Ms, maxMs: half.maxMs, rawReference: o.rawLatency, transportFloor: o.transportFloor },
    /** The service's own processes at half max: cores and µs of CPU per settled message, per process. */
    halfMaxServiceCpu: serviceCpu,
    /**
     * The transport floor's processes at the same rate, the same way, with jobs held as long as
     * the service's (so of the service's size); absent if it failed.
     */
    transportFloorCpu: o.transportFloor.held === undefined ? undefined : cpuPerMessage(o.transportFloor.held.cpuCores, ['ingestor', 'worker', 'redis'], o.transportFloor.held.ratePerS),
    transportFloorImmediateCpu: o.transportFloor.immediate === undefined ? undefined : cpuPerMessage(o.transportFloor.immediate.cpuCores, ['ingestor', 'worker', 'redis'], o.transportFloor.immediate.ratePerS),
    balanceQueries: { idle, underLoad },
    /**
     * A user's trade history page of 100 rows (`GET /v1/users/:id/trades?limit=100` in process)
     * vs the raw prepared read of the same partition: latencies, p99Ratio (service / raw), the
     * users paged through and the mean rows per page of each (history-queries.ts).
     */
    historyQueries: { idle: run.historyIdle, underLoad: run.historyUnderLoad },
    checks: run.checks,
    targets,
  };
}

/** Writes the summary and the chart under bench/results; returns the summary's file. */
export function writeResults(o: BenchOutcome, summary: BenchSummary): string {
  const { options, ring } = o;
  const stamp = new Date(o.benchStartedMs).toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const kind = ring === undefined ? 'bench' : 'bench-ring';
  const jsonFile = path.join(resultsDir, `${kind}-${stamp}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(summary, null, 2)}\n`);
  const points: ChartPoint[] = o.run.results
    .filter((r) => r.label !== 'rest')
    // The closed-loop step offers what settles: plotted at the rate it sent.
    .map((r) => ({ offeredPerS: r.offeredPerS > 0 ? r.offeredPerS : r.achievedOfferPerS, settledPerS: r.settledPerS, p99Ms: r.p99Ms }))
    .sort((a, b) => a.offeredPerS - b.offeredPerS);
  const svg = renderChart(points, o.startRaw.raw.messagesPerS, `settlement service vs raw LOGGED BATCH (${options.settlerCount} settlers, ${options.shardCount + 1} shards, batch ${options.batchMessages})`);
  writeFileSync(path.join(resultsDir, `${kind}-${stamp}.svg`), svg);
  writeFileSync(path.join(resultsDir, ring === undefined ? 'latest.svg' : 'latest-ring.svg'), svg);
  writeFileSync(path.join(resultsDir, ring === undefined ? 'latest.json' : 'latest-ring.json'), readFileSync(jsonFile));
  return jsonFile;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface ProcessCpu {
  /** Process → cores and µs of CPU per message at the step's rate. */
  readonly processes: Record<string, { cores: number; usPerMessage: number }>;
  readonly totalCores: number;
  readonly totalUsPerMessage: number;
}

/** The service's own processes at half max (the settlers summed): the CPU target's figures. */
export function halfMaxServiceCpu(half: StepResult): ProcessCpu {
  return cpuPerMessage({ ...half.cpuCores, settlers: settlerCores(half.cpuCores) }, ['ingestor', 'settlers', 'redis'], half.offeredPerS);
}

/** The settler processes' cores together (the meter names them settler-1, settler-2, …). */
export function settlerCores(cpuCores: Record<string, number>): number {
  return Object.entries(cpuCores).filter(([k]) => k.startsWith('settler')).reduce((sum, [, v]) => sum + v, 0);
}

function cpuPerMessage(cores: Record<string, number>, names: readonly string[], ratePerS: number): ProcessCpu {
  const usPer = (c: number): number => Math.round((c * 1e6) / Math.max(1, ratePerS));
  const processes = Object.fromEntries(names.map((name) => [name, { cores: round(cores[name] ?? 0), usPerMessage: usPer(cores[name] ?? 0) }]));
  const totalCores = names.reduce((sum, name) => sum + (cores[name] ?? 0), 0);
  return { processes, totalCores: round(totalCores), totalUsPerMessage: usPer(totalCores) };
}
