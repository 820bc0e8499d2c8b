import { describe, expect, it } from 'vitest';
import { ShardBatcher, type CutJob } from './batching.js';
import type { FundingMessage } from './messages.js';
import { shardOfRawMessage } from './raw-routing.js';
import { testCatalog } from './test-catalog.js';

function funding(seq: bigint, shard = 'funding'): FundingMessage {
  return { kind: 'funding', shard, seq, userId: 1n, sequenceId: seq, eventType: 'DEPOSIT', amount: 5n, currency: 1, relatedId: 0n, createdAt: 0n };
}

describe('ShardBatcher', () => {
  it('cuts full jobs at once and chains each to the previous job', () => {
    const batcher = new ShardBatcher('funding', 10n, { maxMessages: 2, maxWaitMs: 5 });
    for (const seq of [11n, 12n, 13n, 15n, 16n]) expect(batcher.add(funding(seq), 0)).toBe('added');
    const out: CutJob[] = [];
    expect(batcher.cut(0, false, 100, out)).toBe(2);
    expect(out.map((j) => [j.jobId, j.prevLastSeq, j.messages.map((m) => m.seq)])).toEqual([
      ['funding-11-12', 10n, [11n, 12n]],
      ['funding-13-15', 12n, [13n, 15n]],
    ]);
    expect(batcher.bufferedCount).toBe(1);
    expect(batcher.firstBufferedSeq).toBe(16n);
    expect(batcher.lastCutSeq).toBe(15n);
  });

  it('cuts a partial job only once it is due, or when forced', () => {
    const batcher = new ShardBatcher('funding', 0n, { maxMessages: 50, maxWaitMs: 5 });
    batcher.add(funding(1n), 100);
    batcher.add(funding(2n), 103);
    expect(batcher.dueAtMs).toBe(105);
    const out: CutJob[] = [];
    expect(batcher.cut(104, false, 100, out)).toBe(0);
    expect(batcher.cut(105, false, 100, out)).toBe(1);
    expect(out[0]).toMatchObject({ jobId: 'funding-1-2', prevLastSeq: 0n, firstSeq: 1n, lastSeq: 2n, firstAddedAtMs: 100 });
    batcher.add(funding(3n), 200);
    expect(batcher.cut(200, true, 100, out)).toBe(1);
    expect(out[1]).toMatchObject({ jobId: 'funding-3-3', prevLastSeq: 2n });
    expect(batcher.dueAtMs).toBeUndefined();
  });

  it('respects the job limit of one cut', () => {
    const batcher = new ShardBatcher('funding', 0n, { maxMessages: 1, maxWaitMs: 5 });
    for (let s = 1n; s <= 5n; s++) batcher.add(funding(s), 0);
    const out: CutJob[] = [];
    expect(batcher.cut(0, true, 3, out)).toBe(3);
    expect(batcher.bufferedCount).toBe(2);
    expect(batcher.cut(0, true, 3, out)).toBe(2);
    expect(out.map((j) => j.lastSeq)).toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  it('drops a sequence at or below the last one added as a duplicate', () => {
    const batcher = new ShardBatcher('funding', 7n, { maxMessages: 10, maxWaitMs: 5 });
    expect(batcher.add(funding(7n), 0)).toBe('duplicate');
    expect(batcher.add(funding(9n), 0)).toBe('added');
    expect(batcher.add(funding(8n), 0)).toBe('duplicate');
    expect(batcher.lastSeq).toBe(9n);
  });

  it('refuses a message of another shard', () => {
    const batcher = new ShardBatcher('funding', 0n, { maxMessages: 10, maxWaitMs: 5 });
    expect(() => batcher.add(funding(1n, 'btc_usdt'), 0)).toThrow(/shard btc_usdt given to shard funding/);
  });
});

describe('shardOfRawMessage', () => {
  const catalog = testCatalog();
  it.each([
    ['{"trade_id":1,"base_asset":3,"quote_asset":2,"price":"x"}', 'eth_usdt'],
    ['{"trade_id":1,"symbol":"BTC_ETH"}', 'btc_eth'],
    ['{"event_type":"LOCK","currency":999}', 'funding'],
    ['{"trade_id":1,"base_asset":9,"quote_asset":2}', undefined],
    ['not json', undefined],
    ['[1,2]', undefined],
    ['{"hello":1}', undefined],
  ])('routes %s to %s', (text, shard) => {
    expect(shardOfRawMessage(text, catalog)).toBe(shard);
  });

  it('waits longer for a partial job while the shard is backlogged, and cuts full jobs as before', () => {
    const batcher = new ShardBatcher('funding', 0n, { maxMessages: 3, maxWaitMs: 5, backlogWaitMs: 50 });
    const deposit = (seq: bigint) => ({ kind: 'funding' as const, shard: 'funding', seq, userId: 1n, sequenceId: seq, eventType: 'DEPOSIT' as const, amount: 1n, currency: 1, relatedId: 0n, createdAt: 0n });
    batcher.setBacklogged(true);
    batcher.add(deposit(1n), 0);
    const out: CutJob[] = [];
    expect(batcher.cut(10, false, 10, out)).toBe(0);
    expect(batcher.dueAtMs).toBe(50);
    batcher.add(deposit(2n), 11);
    batcher.add(deposit(3n), 12);
    batcher.add(deposit(4n), 13);
    expect(batcher.cut(13, false, 10, out)).toBe(1);
    expect(out[0]!.messages.map((m) => m.seq)).toEqual([1n, 2n, 3n]);
    batcher.setBacklogged(false);
    expect(batcher.cut(13, false, 10, out)).toBe(1);
    expect(out[1]!.messages.map((m) => m.seq)).toEqual([4n]);
  });
});
