/**
 * The raw ceiling: the same LOGGED BATCHes the settler writes (same rows, same statements from
 * SettlementWriter, same batch size, one batch in flight per shard), computed before the clock
 * starts and executed straight from cassandra-driver. What the service reaches is compared to
 * this, measured in the same run.
 */
import type cassandra from 'cassandra-driver';
import { applyMessages, settlementJobId, type BalanceRow, type SettlementMessage } from '@settlement/domain';
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
 * The statements of one shard's next raw batch, as its settler would write them: the rows the
 * shard's earlier batches left (kept here), the highest trade id so far and the batch count in
 * the watermark. Timestamps come from `nextWriteTimestampUs`, shared by the shards of a run.
 */
export function rawBatchStatements(writer: SettlementWriter, shard: string, feeAccountUserId: bigint, nextWriteTimestampUs: () => bigint): (chunk: readonly SettlementMessage[]) => CqlStatement[] {
  const cache = new Map<string, BalanceRow>();
  let maxTradeId: bigint | undefined;
  let batchCount = 0n;
  return (chunk) => {
    const rows = applyMessages(chunk, (key) => cache.get(key), feeAccountUserId);
    for (const [key, row] of rows) cache.set(key, row);
    const trades = chunk.filter((m) => m.kind === 'trade');
    for (const t of trades) if (maxTradeId === undefined || t.tradeId > maxTradeId) maxTradeId = t.tradeId;
    const lastSeq = chunk[chunk.length - 1]!.seq;
    batchCount += 1n;
    return writer.buildStatements({
      shard,
      writeTimestampUs: nextWriteTimestampUs(),
      trades,
      fundingEvents: chunk.filter((m) => m.kind === 'funding'),
      balanceRows: [...rows.values()],
      deadLetters: [],
      watermark: { lastSeq, maxTradeId, batchCount, jobId: settlementJobId(shard, chunk[0]!.seq, lastSeq), updatedAt: new Date() },
    });
  };
}

/** Batches of each shard; the first `warmUpCount` messages of the stream go into warm-up batches. */
export function planRawBatches(writer: SettlementWriter, messages: readonly SettlementMessage[], batchMessagesMax: number, feeAccountUserId: bigint, warmUpCount = 0): Map<string, PlannedBatch[]> {
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
    const statementsOf = rawBatchStatements(writer, shard, feeAccountUserId, nextWriteTimestampUs);
    const batches: PlannedBatch[] = [];
    const warm = positions.filter((p) => p < 0).length;
    // Batches never straddle the end of the warm-up.
    for (let i = 0; i < list.length; ) {
      const end = Math.min(list.length, i < warm ? Math.min(warm, i + batchMessagesMax) : i + batchMessagesMax);
      const chunk = list.slice(i, end);
      batches.push({ warmUp: i < warm, lastPosition: positions[end - 1]!, statements: statementsOf(chunk), messages: chunk.length, trades: chunk.filter((m) => m.kind === 'trade').length });
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
  for (let attempt = 1; ; attempt++) {
    try {
      await writer.execute(statements);
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
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
