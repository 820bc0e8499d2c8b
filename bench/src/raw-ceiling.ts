/**
 * The raw ceiling: the same LOGGED BATCHes the settler writes (same rows, same statements from
 * SettlementWriter, jobs cut into batches by the settler's planner, one batch in flight per shard), computed before the clock
 * starts and executed straight from cassandra-driver. What the service reaches is compared to
 * this, measured in the same run.
 */
import type cassandra from 'cassandra-driver';
import pRetry from 'p-retry';
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, balanceRowKey, planSettlement, settlementJobId, type BalanceRow, type BalanceRowKey, type SettlementMessage } from '@settlement/domain';
import { SettlementWriter, type CqlStatement } from '@settlement/scylla';
import { round } from './latency.js';

export interface RawCeilingResult {
  readonly messages: number;
  readonly trades: number;
  readonly batches: number;
  readonly elapsedMs: number;
  readonly messagesPerS: number;
  readonly tradesPerS: number;
  /** Trades among the messages written, 0-1: the mix the ceiling was measured on. */
  readonly tradesShare: number;
  readonly statementsPerBatchAvg: number;
}

export interface PlannedBatch {
  /** Part of the untimed warm-up (the stream's funding-heavy start). */
  readonly warmUp: boolean;
  /** Position of its last message in the stream, counted from the first timed message. */
  readonly lastPosition: number;
  readonly statements: CqlStatement[];
  readonly messages: number;
  readonly trades: number;
}

/**
 * Messages sent and not yet settled, at most, in the service's closed-loop step, and so in the
 * raw ceiling's stream order: ten full jobs per shard. Half the stream goes to the funding
 * shard; with four jobs per shard the symbol shards had under three each in flight (one being
 * written, one waiting, one being filled), which left them idle between jobs.
 */
export function closedLoopWindowMessages(batchMessages: number, shards: number): number {
  return batchMessages * shards * 10;
}

/**
 * How the settler cuts a job into LOGGED BATCHes (settler.batch_statements_max and
 * settler.batch_bytes_max: Cassandra ≥ 2.2 rejects a batch above 50 KB). The raw path cuts the
 * same way, so a ratio compares the same batches; without it a 50-message job is one ~125 KB
 * batch in the raw path and about four in the service.
 */
export interface RawChunking {
  readonly catalog: MarketCatalog;
  /** Undefined: no bound (a job is one batch, as batch-cost.ts measures it). */
  readonly batchStatementsMax?: number | undefined;
  readonly batchBytesMax?: number | undefined;
}

/** One LOGGED BATCH of the raw path and the messages it settles. */
export interface RawBatch {
  readonly statements: CqlStatement[];
  readonly messages: readonly SettlementMessage[];
}

/**
 * The batches of one shard's next job, as its settler would write them: planned by the
 * settler's own planSettlement (libs/domain) on the rows the shard's earlier jobs left (kept
 * here), with the highest trade id so far and the batch count in each watermark. Timestamps
 * come from `nextWriteTimestampUs`, shared by the shards of a run.
 */
export function rawJobBatches(writer: SettlementWriter, shard: string, nextWriteTimestampUs: () => bigint, chunking: RawChunking): (job: readonly SettlementMessage[]) => RawBatch[] {
  const cache = new Map<BalanceRowKey, BalanceRow>();
  let maxTradeId: bigint | undefined;
  let batchCount = 0n;
  let afterSeq = 0n;
  const { catalog } = chunking;
  const assetIds = new Set(catalog.assets.keys());
  return (job) => {
    const plan = planSettlement({
      shard,
      market: catalog.markets.get(shard),
      assetIds,
      feeAccountUserId: catalog.feeAccountUserId,
      afterSeq,
      messages: job,
      settledTradeSeqs: NO_SETTLED_TRADES,
      current: (key) => cache.get(key),
      batchStatementsMax: chunking.batchStatementsMax ?? Number.MAX_SAFE_INTEGER,
      batchBytesMax: chunking.batchBytesMax,
    });
    if (plan.deadLettered > 0) throw new Error(`raw path: ${plan.deadLettered} messages of ${shard} would be dead-lettered; the bench streams only valid messages`);
    return plan.chunks.map((chunk) => {
      for (const row of chunk.rows) cache.set(balanceRowKey(row.userId, row.assetId), row);
      for (const t of chunk.trades) if (maxTradeId === undefined || t.tradeId > maxTradeId) maxTradeId = t.tradeId;
      batchCount += 1n;
      afterSeq = chunk.lastSeq;
      const messages = [...chunk.trades, ...chunk.funding].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
      const statements = writer.buildStatements({
        shard,
        writeTimestampUs: nextWriteTimestampUs(),
        trades: chunk.trades,
        fundingEvents: chunk.funding,
        balanceRows: chunk.rows,
        deadLetters: [],
        watermark: { lastSeq: chunk.lastSeq, maxTradeId, batchCount, jobId: settlementJobId(shard, job[0]!.seq, job[job.length - 1]!.seq), updatedAt: new Date() },
      });
      return { statements, messages };
    });
  };
}

const NO_SETTLED_TRADES: ReadonlyMap<bigint, bigint> = new Map();

/** The settler's own bounds, from its configuration. */
export function rawChunking(config: SettlementConfig): RawChunking {
  return { catalog: new MarketCatalog(config), batchStatementsMax: config.settler.batch_statements_max, batchBytesMax: config.settler.batch_bytes_max };
}

/**
 * Batches of each shard: its messages cut into jobs of `batchMessagesMax` (as the ingestor
 * does), each job into batches as the settler does (`chunking`); the first `warmUpCount`
 * messages of the stream go into warm-up batches.
 */
export function planRawBatches(writer: SettlementWriter, messages: readonly SettlementMessage[], batchMessagesMax: number, chunking: RawChunking, warmUpCount = 0): Map<string, PlannedBatch[]> {
  // Each shard's messages in stream order, with their positions in the stream.
  const shards = new Map<string, { messages: SettlementMessage[]; positions: number[] }>();
  messages.forEach((m, i) => {
    let shard = shards.get(m.shard);
    if (shard === undefined) shards.set(m.shard, (shard = { messages: [], positions: [] }));
    shard.messages.push(m);
    shard.positions.push(i - warmUpCount);
  });
  const plans = new Map<string, PlannedBatch[]>();
  let writeTimestampUs = BigInt(Date.now()) * 1000n;
  const nextWriteTimestampUs = (): bigint => (writeTimestampUs += 1n);
  for (const [shard, { messages: list, positions }] of shards) {
    const batchesOf = rawJobBatches(writer, shard, nextWriteTimestampUs, chunking);
    const positionOf = new Map(list.map((m, i) => [m.seq, positions[i]!]));
    const batches: PlannedBatch[] = [];
    const warm = positions.filter((p) => p < 0).length;
    // Jobs never straddle the end of the warm-up.
    for (let i = 0; i < list.length; ) {
      const end = Math.min(list.length, i < warm ? Math.min(warm, i + batchMessagesMax) : i + batchMessagesMax);
      for (const batch of batchesOf(list.slice(i, end))) {
        const last = batch.messages[batch.messages.length - 1];
        if (last === undefined) continue;
        batches.push({ warmUp: i < warm, lastPosition: positionOf.get(last.seq)!, statements: batch.statements, messages: batch.messages.length, trades: batch.messages.filter((m) => m.kind === 'trade').length });
      }
      i = end;
    }
    plans.set(shard, batches);
  }
  return plans;
}

/**
 * A write timeout is retried, as the settler retries it: the batch is idempotent (absolute
 * values, fixed timestamp), and an overloaded single node does time out now and then.
 */
export async function executeWithRetry(writer: SettlementWriter, statements: CqlStatement[]): Promise<void> {
  await pRetry(() => writer.execute(statements), { retries: 4, minTimeout: 100, factor: 2 });
}

/** The untimed warm-up batches of `plans`, one in flight per shard. */
export async function runRawWarmUp(writer: SettlementWriter, plans: Map<string, PlannedBatch[]>): Promise<void> {
  await Promise.all(
    [...plans.values()].map(async (list) => {
      for (const batch of list) if (batch.warmUp) await executeWithRetry(writer, batch.statements);
    }),
  );
}

export async function runRawCeiling(options: {
  client: cassandra.Client;
  writer: SettlementWriter;
  plans: Map<string, PlannedBatch[]>;
  /** Stop taking new batches after this long, ms. */
  durationMs: number;
  /**
   * The stream is written in order, as the service's closed loop sends it: a batch starts only
   * once its messages are among the first `unsettledMax` not yet acknowledged. Without this a
   * shard of cheap batches (funding) runs ahead of the others and the ceiling counts a cheaper
   * mix of messages than the stream has.
   */
  unsettledMax: number;
  /** Called when the untimed warm-up is done and the clock starts. */
  onTimedStart?: () => void;
  /** False: the warm-up batches were written already (runRawWarmUp), skip them. Default true. */
  warmUp?: boolean;
}): Promise<RawCeilingResult> {
  // The warm-up first, untimed, so the timed part writes on top of a funded, warm keyspace.
  if (options.warmUp !== false) await runRawWarmUp(options.writer, options.plans);
  let messages = 0;
  let trades = 0;
  let batches = 0;
  let statements = 0;
  // Shards waiting for the stream to reach their next batch; woken by every acknowledgement.
  let waiting: (() => void)[] = [];
  const wake = (): void => {
    const woken = waiting;
    waiting = [];
    for (const resolve of woken) resolve();
  };
  options.onTimedStart?.();
  const started = performance.now();
  const deadline = started + options.durationMs;
  // Every shard keeps one batch in flight until the deadline or until the first shard runs out
  // of batches: past that point the parallelism would no longer match the service's.
  let oneShardDone = false;
  await Promise.all(
    [...options.plans.values()].map(async (list) => {
      for (const batch of list) {
        if (batch.warmUp) continue;
        // Messages are acknowledged in whole batches that each started inside the window, so
        // some shard always has a batch it may start: this never waits for nothing.
        while (batch.lastPosition >= messages + options.unsettledMax && !oneShardDone) await new Promise<void>((resolve) => waiting.push(resolve));
        if (performance.now() >= deadline || oneShardDone) break;
        await executeWithRetry(options.writer, batch.statements);
        messages += batch.messages;
        trades += batch.trades;
        batches += 1;
        statements += batch.statements.length;
        wake();
      }
      oneShardDone = true;
      wake();
    }),
  );
  const elapsedMs = performance.now() - started;
  return {
    messages,
    trades,
    batches,
    elapsedMs,
    messagesPerS: (messages * 1000) / elapsedMs,
    tradesPerS: (trades * 1000) / elapsedMs,
    tradesShare: round(trades / Math.max(1, messages), 3),
    statementsPerBatchAvg: batches === 0 ? 0 : statements / batches,
  };
}
