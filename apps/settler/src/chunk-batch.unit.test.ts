import { describe, expect, it } from 'vitest';
import type { SettleChunk, TradeMessage } from '@settlement/domain';
import { chunkBatch } from './chunk-batch.js';
import type { ShardState } from './shard-types.js';

const trade = (seq: bigint, tradeId: bigint) => ({ kind: 'trade', shard: 'btc_usdt', seq, tradeId }) as unknown as TradeMessage;
const chunk = (lastSeq: bigint, trades: TradeMessage[] = []): SettleChunk => ({ trades, funding: [], rows: [], deadLetters: [], lastSeq, statementCount: 1, bytesEstimate: 0 });
const stored: ShardState = { lastSeq: 100n, writeTs: 5_000n, batchCount: 7n, exists: true, maxTradeId: 40n };
const now = new Date(0);

describe('chunkBatch', () => {
  it('moves the watermark to the chunk, with the highest trade id so far, one batch on', () => {
    const { rows, after } = chunkBatch('btc_usdt', 'job-1', chunk(120n, [trade(110n, 55n), trade(120n, 52n)]), stored, 6_000n, now);
    expect(rows.watermark).toEqual({ lastSeq: 120n, maxTradeId: 55n, batchCount: 8n, jobId: 'job-1', updatedAt: now });
    expect(rows.writeTimestampUs).toBe(6_000n);
    expect(after).toEqual({ lastSeq: 120n, writeTs: 6_000n, batchCount: 8n, exists: true, maxTradeId: 55n });
  });

  it('never moves the watermark back: a resumed job\'s chunk below it writes the watermark it found', () => {
    const { rows, after } = chunkBatch('btc_usdt', 'job-1', chunk(90n), stored, 6_000n, now);
    expect(rows.watermark.lastSeq).toBe(100n);
    // No trade in the chunk: the stored highest trade id is kept, and not written.
    expect(rows.watermark.maxTradeId).toBeUndefined();
    expect(after.maxTradeId).toBe(40n);
  });
});
