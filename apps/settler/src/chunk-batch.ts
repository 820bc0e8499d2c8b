/**
 * One planned chunk as the LOGGED BATCH that writes it, and the shard state once that batch is
 * acknowledged. Pure: the fenced timestamp is issued by the caller.
 */
import type { SettleChunk } from '@settlement/domain';
import type { SettlementBatchRows } from '@settlement/scylla';
import type { ShardState } from './shard-types.js';

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

function maxTradeIdOf(trades: readonly { tradeId: bigint }[], prior: bigint | undefined): bigint | undefined {
  let max = prior;
  for (const t of trades) if (max === undefined || t.tradeId > max) max = t.tradeId;
  return max;
}

export interface ChunkBatch {
  readonly rows: SettlementBatchRows;
  /** The shard's state once the batch is acknowledged. */
  readonly after: ShardState;
}

export function chunkBatch(shard: string, jobId: string, chunk: SettleChunk, state: ShardState, writeTimestampUs: bigint, now: Date): ChunkBatch {
  const batchCount = state.batchCount + 1n;
  // A resumed job's first chunks may end below the watermark its earlier attempt wrote;
  // the watermark never moves back.
  const lastSeq = maxBig(chunk.lastSeq, state.lastSeq);
  const hasTrades = chunk.trades.length > 0;
  const maxTradeId = hasTrades ? maxTradeIdOf(chunk.trades, state.maxTradeId) : state.maxTradeId;
  return {
    rows: {
      shard,
      writeTimestampUs,
      trades: chunk.trades,
      fundingEvents: chunk.funding,
      balanceRows: chunk.rows,
      deadLetters: chunk.deadLetters.map((d) => ({ seq: d.seq, reason: d.reason, field: d.field, jobId, raw: d.raw })),
      watermark: { lastSeq, maxTradeId: hasTrades ? maxTradeId : undefined, batchCount, jobId, updatedAt: now },
    },
    after: { lastSeq, writeTs: writeTimestampUs, batchCount, exists: true, maxTradeId },
  };
}
