/** The printed report of `npm run bench`: the raw ceilings, the tables of steps and stages, the ratio, checks and targets. */
import path from 'node:path';
import { ROOT } from '@settlement/tools';
import type { BalanceQueryResult } from './balance-queries.js';
import { halfMaxStep, settlerCores, type BenchOutcome, type BenchSummary } from './bench-summary.js';
import type { HistoryQueryResult } from './history-queries.js';
import { round } from './latency.js';
import type { RawCeilingResult } from './raw-ceiling.js';
import { formatTable } from './table.js';
import type { TransportFloorResult } from './transport-floor.js';

/** Writes the report to stdout; `jsonFile`: where the summary was written. */
export function printReport(o: BenchOutcome, summary: BenchSummary, jsonFile: string): void {
  const { raw, rawCpuCores } = o.startRaw;
  const { results, pairs, maxStep, idle, underLoad, historyIdle, historyUnderLoad, checks } = o.run;
  const { durability } = o;
  const half = halfMaxStep(o.run);
  const targets = summary.targets;
  const rawLine = (what: string, r: RawCeilingResult, cores: Record<string, number>): string =>
    `${what}: ${Math.round(r.messagesPerS)} msgs/s (${Math.round(r.tradesPerS)} trades/s, ${round(100 * r.tradesShare, 0)} % trades), Cassandra ${cores['cassandra'] ?? '?'} cores, bench ${cores['bench'] ?? '?'}\n`;
  process.stdout.write(`\n${rawLine('Raw LOGGED BATCH ceiling (start of run, sets the offered rates)', raw, rawCpuCores)}`);
  for (const p of pairs) process.stdout.write(rawLine(`Raw LOGGED BATCH ceiling on the ${p.step} step's messages`, p.raw, p.rawCpuCores));
  process.stdout.write('\n');
  if (durability !== undefined) {
    process.stdout.write(
      formatTable(
        ['durability cost: raw ceiling', 'commit log', 'msgs/s', 'trades/s', 'batches', 'cassandra cores', 'vs periodic'],
        [
          ['local stack (start of run)', 'periodic 10 s', Math.round(raw.messagesPerS), Math.round(raw.tradesPerS), raw.batches, rawCpuCores['cassandra'] ?? NaN, ''],
          ...[durability.periodic, durability.batch].map((d) => [
            `private node :${durability.node.port}`,
            d.commitlog === 'periodic' ? 'periodic 10 s' : 'batch 2 ms',
            Math.round(d.raw.messagesPerS), Math.round(d.raw.tradesPerS), d.raw.batches, d.cpuCores['cassandra'] ?? NaN,
            round(d.raw.messagesPerS / durability.periodic.raw.messagesPerS, 3),
          ]),
        ],
      ) + '\n(the same messages; on the private node each mode on a fresh keyspace after the same untimed warm-up)\n\n',
    );
  } else if (o.options.durabilityCeilingOn) process.stdout.write('durability cost: the durability ceiling failed (see the log)\n\n');
  process.stdout.write(
    formatTable(
      ['step', 'offered/s', 'sent/s', 'settled/s', 'p50 ms', 'p99 ms', 'max ms', 'queue max', 'gc max·sum ms', 'cassandra', 'settlers', 'ingestor', 'redis', 'bench+sim'],
      results.map((r) => [
        r.label, r.offeredPerS, r.achievedOfferPerS, r.settledPerS, r.p50Ms, r.p99Ms, r.maxMs, r.queueDepthMax,
        r.cassandraGc === undefined ? 'n/a' : `${r.cassandraGc.maxMs}·${r.cassandraGc.totalMs}`,
        r.cpuCores['cassandra'] ?? NaN,
        round(settlerCores(r.cpuCores)),
        r.cpuCores['ingestor'] ?? NaN, r.cpuCores['redis'] ?? NaN, r.cpuCores['bench+simulator'] ?? NaN,
      ]),
    ) + '\n\n',
  );
  process.stdout.write(
    formatTable(
      ['step', 'jobs', 'msgs/job', 'ingest p50', 'ingest p99', 'queued p50', 'queued p99', 'settle p50', 'settle p99'],
      results.map((r) => [
        r.label, r.stages.jobs, r.stages.messagesPerJob, r.stages.ingest.p50Ms, r.stages.ingest.p99Ms,
        r.stages.queued.p50Ms, r.stages.queued.p99Ms, r.stages.settle.p50Ms, r.stages.settle.p99Ms,
      ]),
    ) + '\n(latency per message by stage, ms: ingest = sent → job added, queued = added → taken by a settler, settle = taken → completed)\n',
  );
  // Where the half-max step's tail sits: its slowest seconds (by send time).
  const slowest = [...half.stages.bySecond].sort((a, b) => b.maxMs - a.maxMs).slice(0, 5).sort((a, b) => a.second - b.second);
  process.stdout.write(`half max, slowest seconds of ${half.stages.bySecond.length} (second: p99 · max ms): ${slowest.map((s) => `${s.second}: ${s.p99Ms} · ${s.maxMs}`).join(', ')}\n\n`);
  const shardNames = [...new Set(results.flatMap((r) => Object.keys(r.shards)))].sort();
  process.stdout.write(
    formatTable(
      ['step', ...shardNames.map((shard) => `${shard} batches/jobs · write/job ms (writes per job) · read ms · row loads (ms)`)],
      results.map((r) => [r.label, ...shardNames.map((shard) => {
        const t = r.shards[shard];
        return t === undefined ? '' : `${t.batches}/${t.jobs} · ${t.writeMeanMs}/${t.jobMeanMs} (${t.writesPerJobMs}) · ${t.readMeanMs} · ${t.rowLoads} (${Number.isNaN(t.rowLoadMeanMs) ? '-' : t.rowLoadMeanMs})`;
      })]),
    ) +
      '\n(per shard, from the settlers\' histograms: LOGGED BATCHes written and jobs handled, mean batch write and mean job time, the batch writes of a job together ' +
      '(one after the other: the rest of the job time is reads, planning, and waiting for a core), mean read before planning per job, jobs that read uncached balance rows and the mean of those reads, ms)\n\n',
  );
  const queryRow = (label: string, q: BalanceQueryResult | undefined, rows: string): Array<string | number> => [
    label, q?.service.p50Ms ?? NaN, q?.service.p99Ms ?? NaN, q?.raw.p50Ms ?? NaN, q?.raw.p99Ms ?? NaN,
    q === undefined ? NaN : round(q.service.p99Ms / q.raw.p99Ms, 2), q?.service.count ?? 0, rows,
  ];
  const pageRows = (h: HistoryQueryResult | undefined): string => (h === undefined ? '' : `${h.users} · ${h.rowsPerPage.service}/${h.rowsPerPage.raw}`);
  process.stdout.write(
    formatTable(
      ['query (ms)', 'service p50', 'service p99', 'raw p50', 'raw p99', 'p99 ratio', 'count', 'users · rows/page'],
      [
        queryRow('balance idle', idle, ''),
        queryRow('balance under load (half max)', underLoad, ''),
        queryRow('history page of 100 idle', historyIdle, pageRows(historyIdle)),
        queryRow('history page of 100 under load', historyUnderLoad, pageRows(historyUnderLoad)),
      ],
    ) +
      `\n(balance: getUserBalances vs the raw read of the user's partition; history: the trades page of GET /v1/users/:id/trades?limit=100 in process vs the raw LIMIT 100 read of the partition it reads, ` +
      `${o.options.historyQueryPairsPerS} pairs/s under load beside ${o.options.queryPairsPerS} balance pairs/s; p99 ratio = service / raw)\n\n`,
  );
  printHalfMax(o, summary);
  process.stdout.write(
    `service / raw = ${summary.serviceToRawRatio} (` +
      `${pairs.length === 0 ? 'best step against the start-of-run ceiling' : `median of ${pairs.length} closed-loop steps against the raw ceiling on their messages: ${pairs.map((p) => p.ratio).join(', ')}`}` +
      `; max ${maxStep.settledPerS} msgs/s, ${summary.maxSettledTradesPerS} trades/s, ${round(100 * maxStep.tradesShare, 0)} % trades; against the start-of-run ceiling ${summary.serviceToFirstRawRatio})\n`,
  );
  const throughput = throughputBound(o, summary);
  if (throughput !== undefined) process.stdout.write(`${throughput}\n`);
  process.stdout.write(`checks: ${checks.balancesChecked} balances, ${checks.mismatches.length} mismatches, conservation ${checks.conservation ? 'holds' : 'BROKEN'}\n`);
  process.stdout.write(`targets: ${Object.entries(targets).map(([k, v]) => `${k}=${v ? 'yes' : 'NO'}`).join(' ')}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, jsonFile)} and bench/results/latest.svg (${Math.round((Date.now() - o.benchStartedMs) / 1000)} s)\n`);
}

/**
 * The half-max step beside its two references of the same run — the raw pipeline (Cassandra
 * alone) and the transport floor (ZMQ, ingestor, Redis and BullMQ alone) — with the CPU of each
 * process per message, and what bounds each half-max target that is missed.
 */
function printHalfMax(o: BenchOutcome, summary: BenchSummary): void {
  const half = halfMaxStep(o.run);
  const { rawLatency, transportFloor } = o;
  const others = (cores: Record<string, number>): number => round(Object.entries(cores).filter(([k]) => k !== 'cassandra').reduce((sum, [, v]) => sum + v, 0));
  const rows: Array<Array<string | number>> = [
    ['service (ZMQ sent → settled)', half.offeredPerS, half.p50Ms, half.p99Ms, half.maxMs, half.stages.messagesPerJob, '', half.cpuCores['cassandra'] ?? NaN, others(half.cpuCores)],
  ];
  const floorRow = (label: string, f: TransportFloorResult | undefined): void => {
    if (f !== undefined) rows.push([label, f.ratePerS, f.p50Ms, f.p99Ms, f.maxMs, f.stages.messagesPerJob, '', 0, others(f.cpuCores)]);
  };
  floorRow('transport floor, jobs done at once', transportFloor.immediate);
  floorRow('transport floor, jobs held as the service\'s', transportFloor.held);
  if (rawLatency !== undefined) {
    rows.push(['raw pipeline (due → acknowledged)', rawLatency.ratePerS, rawLatency.p50Ms, rawLatency.p99Ms, rawLatency.maxMs, rawLatency.messagesPerBatch, `${rawLatency.batchWrite.p50Ms}·${rawLatency.batchWrite.p99Ms}`, rawLatency.cpuCores['cassandra'] ?? NaN, rawLatency.cpuCores['bench'] ?? NaN]);
  }
  process.stdout.write(
    formatTable(['half max latency', 'rate/s', 'p50 ms', 'p99 ms', 'max ms', 'msgs/batch', 'batch write p50·p99 ms', 'cassandra cores', 'other cores'], rows) +
      '\n(transport floor: the same messages at the same rate through ZMQ, an ingestor, Redis and BullMQ to a worker that completes each job without settling, ' +
      `at once, or after holding it as long as the service's settler took per job of the shard (${Object.entries(transportFloor.held?.holdMs ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')} ms); ` +
      'raw pipeline: settled in-process with one LOGGED BATCH in flight per shard; both with the service stopped)\n\n',
  );
  const cpuRows: Array<Array<string | number>> = [];
  const service = summary.halfMaxServiceCpu;
  for (const [name, c] of Object.entries(service.processes)) cpuRows.push(['service', name, c.cores, c.usPerMessage]);
  cpuRows.push(['service', 'total', service.totalCores, service.totalUsPerMessage]);
  for (const [label, floor] of [['floor, jobs at once', summary.transportFloorImmediateCpu], ['floor, jobs held', summary.transportFloorCpu]] as const) {
    if (floor === undefined) continue;
    for (const [name, c] of Object.entries(floor.processes)) cpuRows.push([label, name, c.cores, c.usPerMessage]);
    cpuRows.push([label, 'total', floor.totalCores, floor.totalUsPerMessage]);
  }
  process.stdout.write(formatTable(['half max CPU', 'process', 'cores', 'µs per message'], cpuRows) + '\n(Redis: the server process; the load generator and Cassandra not counted)\n\n');
  for (const line of halfMaxBounds(o, summary)) process.stdout.write(`${line}\n`);
  process.stdout.write('\n');
}

/** The service's own processes at a step (settlers, ingestor, Redis server), cores. */
function serviceCores(cores: Record<string, number>): number {
  return round(Object.entries(cores).filter(([k]) => k === 'ingestor' || k === 'redis' || k.startsWith('settler')).reduce((sum, [, v]) => sum + v, 0));
}

/**
 * When a throughput target is missed: Cassandra's cores in each closed-loop step against those it
 * had in the raw ceiling on the same messages, and what the service's own processes took on the
 * same machine meanwhile (its CPU is the share Cassandra does not get).
 */
function throughputBound(o: BenchOutcome, summary: BenchSummary): string | undefined {
  const t = summary.targets;
  if ((t.ratioMedianAtLeast090 && t.noPairUnder080) || o.run.pairs.length === 0) return undefined;
  const parts = o.run.pairs.map((p) => {
    const step = o.run.results.find((r) => r.label === p.step);
    const inStep = step?.cpuCores['cassandra'] ?? NaN;
    const inRaw = p.rawCpuCores['cassandra'] ?? NaN;
    const perMessage = (cores: number, perS: number): number => Math.round((cores * 1e6) / perS);
    return `${p.ratio}: Cassandra ${inStep} cores (${perMessage(inStep, p.serviceMessagesPerS)} µs/msg) vs ${inRaw} in the raw ceiling (${perMessage(inRaw, p.raw.messagesPerS)} µs/msg), ` +
      `Cassandra's share ${round(inStep / inRaw, 2)}; the service's own processes ${step === undefined ? '?' : serviceCores(step.cpuCores)} cores`;
  });
  return `throughput target missed (median ≥ 0.9, no pair < 0.8); per closed-loop step, ratio: ${parts.join('; ')}.`;
}

/** For each half-max target missed, what the same run's references say bounds it, and by how much. */
function halfMaxBounds(o: BenchOutcome, summary: BenchSummary): string[] {
  const half = halfMaxStep(o.run);
  const { rawLatency: raw } = o;
  const floor = o.transportFloor.immediate;
  const t = summary.targets;
  const lines: string[] = [];
  if (raw === undefined || floor === undefined || summary.transportFloorCpu === undefined) return ['bounds: a reference is missing (see the log); no bound computed'];
  if (!t.halfMaxP50WithinRawPlus10Ms) {
    lines.push(
      `p50 target missed: service ${half.p50Ms} ms > raw ${raw.p50Ms} + 10. The transport alone (jobs done at once) takes ${floor.p50Ms} ms of the 10 allowed; ` +
        `the settling adds ${round(half.p50Ms - floor.p50Ms, 2)} ms over it, of which the service's mean job time per shard is ${Object.values(o.transportFloor.held?.holdMs ?? {}).join('/')} ms ` +
        `(stages at p50: ingest ${half.stages.ingest.p50Ms}, queued ${half.stages.queued.p50Ms}, settle ${half.stages.settle.p50Ms} ms; the raw pipeline's batch write p50 ${raw.batchWrite.p50Ms} ms at ${raw.messagesPerBatch} msgs per batch, the service's ${half.stages.messagesPerJob}).`,
    );
    const held = o.transportFloor.held;
    if (held !== undefined) {
      const limit = round(raw.p50Ms + 10, 2);
      lines.push(
        `  With each job held as long as the service's settler took, and no Cassandra at all, the transport's p50 is ${held.p50Ms} ms: ` +
          (held.p50Ms > limit ? `${round(held.p50Ms - limit, 2)} ms over the target (${limit}) by itself.` : `${round(limit - held.p50Ms, 2)} ms under the target (${limit}).`),
      );
    }
  }
  if (!t.halfMaxP99Within2xRaw) {
    lines.push(`p99 target missed: service ${half.p99Ms} ms > 2 × raw ${raw.p99Ms}. Transport floor p99 ${floor.p99Ms} ms; stages at p99: ingest ${half.stages.ingest.p99Ms}, queued ${half.stages.queued.p99Ms}, settle ${half.stages.settle.p99Ms} ms.`);
  }
  if (!t.serviceCpuAtHalfMaxAtMost04Cores) {
    const floorCpu = summary.transportFloorCpu!;
    const service = summary.halfMaxServiceCpu;
    const room = floorCpu.totalCores >= 0.4
      ? `already ${round(floorCpu.totalCores - 0.4)} cores over the target before any settling`
      : `leaving ${round(0.4 - floorCpu.totalCores)} cores of the target for the settling`;
    lines.push(
      `CPU target missed: the service's own processes ${service.totalCores} cores (${service.totalUsPerMessage} µs per message) > 0.4. The transport alone at the service's job sizes ` +
        `(ingestor, BullMQ worker, Redis; jobs held) takes ${floorCpu.totalCores} cores (${floorCpu.totalUsPerMessage} µs per message), ${room}; ` +
        `the raw pipeline's settling of the same messages, in-process, takes ${raw.cpuCores['bench'] ?? '?'} cores with its load generator.`,
    );
  }
  return lines;
}
