import { describe, expect, it } from 'vitest';
import { MarketCatalog, testCatalogInput, type CutJob } from '@settlement/domain';
import { IngestCounts } from './counters.js';
import { IngestPipeline, NOT_SEQUENCED, type GapFill, type PipelineOptions, type RejectedFrame } from './pipeline.js';

// Two of the configured markets: the tests route by base/quote pair.
const catalog = new MarketCatalog({ ...testCatalogInput(), symbols: testCatalogInput().symbols.filter((s) => s.name !== 'btc_eth') });

const PAIRS = { btc_usdt: [1, 2], eth_usdt: [3, 2] } as const;

function trade(seq: number | bigint, symbol: keyof typeof PAIRS = 'btc_usdt'): Buffer {
  const [base, quote] = PAIRS[symbol];
  return Buffer.from(
    `{"trade_id":${seq},"buy_order_id":1,"sell_order_id":2,"buyer_user_id":10,"seller_user_id":11,"price":100000000,"quantity":5,` +
      `"base_asset":${base},"quote_asset":${quote},"buyer_refund":0,"seller_refund":0,"match_seq":1,"output_sequence":${seq},"settled_at":1,` +
      `"buyer_quote_version":1,"buyer_base_version":1,"seller_base_version":1,"seller_quote_version":1}`,
  );
}

function funding(sequenceId: number): Buffer {
  return Buffer.from(`{"user_id":10,"sequence_id":${sequenceId},"event_type":"DEPOSIT","amount":5,"currency":1,"related_id":0,"created_at":1}`);
}

function pipeline(overrides: Partial<PipelineOptions> = {}): { p: IngestPipeline; rejected: RejectedFrame[]; counts: IngestCounts; fills: GapFill[] } {
  const rejected: RejectedFrame[] = [];
  const fills: GapFill[] = [];
  const counts = new IngestCounts();
  const p = new IngestPipeline({
    catalog,
    sequenceScope: 'global',
    batchMessagesMax: 2,
    batchWaitMs: 5,
    backlogWaitMs: 5,
    reorderWindowMs: 20,
    frameBytesMax: 10_000,
    state: new Map(),
    counts,
    onRejected: (r) => rejected.push(r),
    onGapFilled: (f) => fills.push(f),
    fundingNumbering: 'auto',
    ...overrides,
  });
  return { p, rejected, counts, fills };
}

const seqsOf = (jobs: readonly CutJob[], shard: string) => jobs.filter((j) => j.shard === shard).flatMap((j) => j.messages.map((m) => m.seq));

describe('IngestPipeline', () => {
  it('with a global scope, finds holes on the whole trade stream and sorts a reordered pair across symbols', () => {
    const { p } = pipeline();
    expect(p.ingest(trade(2, 'eth_usdt'), 0, 'live')).toBe(2n);
    expect(p.heldCount).toBe(1);
    expect(p.nextDueMs()).toBe(20);
    p.ingest(trade(1), 1, 'live');
    p.ingest(trade(3), 2, 'live');
    expect(p.heldCount).toBe(0);
    const cut = p.cut(100, false, 100)!;
    expect(seqsOf(cut.jobs, 'btc_usdt')).toEqual([1n, 3n]);
    expect(seqsOf(cut.jobs, 'eth_usdt')).toEqual([2n]);
    expect(cut.marks).toEqual({ btc_usdt: '3', eth_usdt: '2', global: '3' });
  });

  it('keeps the global restart point below any trade still waiting in a partial job', () => {
    const { p } = pipeline();
    p.ingest(trade(1), 0, 'live');
    p.ingest(trade(2, 'eth_usdt'), 0, 'live');
    p.ingest(trade(3), 0, 'live');
    // btc_usdt has a full job (1, 3); eth_usdt's 2 is not due yet.
    const cut = p.cut(1, false, 100)!;
    expect(cut.jobs.map((j) => j.jobId)).toEqual(['btc_usdt-1-3']);
    expect(cut.marks).toEqual({ btc_usdt: '3', global: '1' });
  });

  it('resumes from persisted state: replayed messages already in jobs are duplicates, the rest continue the chain', () => {
    const { p, counts } = pipeline({ state: new Map([['global', 1n], ['btc_usdt', 3n], ['eth_usdt', 0n]]) });
    expect(p.replayStarts()).toEqual([
      { stream: 'global', fromSeq: 2n },
      { stream: 'funding', fromSeq: 1n },
    ]);
    p.ingest(trade(2, 'eth_usdt'), 0, 'replay');
    p.ingest(trade(3), 0, 'replay');
    p.ingest(trade(4), 0, 'replay');
    expect(counts.duplicates.total('btc_usdt')).toBe(1);
    const cut = p.cut(100, true, 100)!;
    const btc = cut.jobs.find((j) => j.shard === 'btc_usdt')!;
    expect(btc).toMatchObject({ jobId: 'btc_usdt-4-4', prevLastSeq: 3n });
    expect(seqsOf(cut.jobs, 'eth_usdt')).toEqual([2n]);
  });

  it('with a per-symbol scope, a hole in one symbol does not hold another', () => {
    const { p } = pipeline({ sequenceScope: 'per_symbol' });
    p.ingest(trade(2), 0, 'live');
    p.ingest(trade(1, 'eth_usdt'), 0, 'live');
    expect(p.heldCount).toBe(1);
    expect(p.batchedCount).toBe(1);
    expect(p.expiredHoles(20)).toEqual([{ stream: 'btc_usdt', hole: expect.objectContaining({ fromSeq: 1n, toSeq: 1n }) }]);
    expect(p.skipHole('btc_usdt', 20)).toEqual({ fromSeq: 1n, toSeq: 1n });
    expect(p.batchedCount).toBe(2);
    expect(p.cut(20, true, 100)!.marks).toEqual({ btc_usdt: '2', eth_usdt: '1' });
  });

  it('counts a duplicate and a skipped hole', () => {
    const { p, counts } = pipeline();
    p.ingest(trade(1), 0, 'live');
    p.ingest(trade(1), 0, 'live');
    p.ingest(trade(5), 0, 'live');
    expect(counts.duplicates.total('global')).toBe(1);
    p.skipAllHoles(30);
    expect(counts.gaps.total('global')).toBe(1);
    expect(counts.gapMessages.total('global')).toBe(3);
  });

  it('numbers funding events sent with sequence_id 0 itself, and never takes such an event from a replay', () => {
    const { p, counts } = pipeline({ state: new Map([['funding', 7n]]) });
    expect(p.ingest(funding(0), 0, 'live')).toBe(NOT_SEQUENCED);
    p.ingest(funding(0), 0, 'live');
    expect(p.ingest(funding(0), 0, 'replay')).toBe(NOT_SEQUENCED);
    expect(counts.duplicates.total('funding:unnumbered-replay')).toBe(1);
    const cut = p.cut(100, true, 100)!;
    expect(cut.jobs).toHaveLength(1);
    expect(cut.jobs[0]).toMatchObject({ jobId: 'funding-8-9', prevLastSeq: 7n });
    expect(cut.marks).toEqual({ funding: '9', 'funding:assigned': '9', global: '0' });
  });

  it('resumes the assigned funding counter above what was assigned before a crash', () => {
    const { p } = pipeline({ state: new Map([['funding', 7n], ['funding:assigned', 12n]]) });
    p.ingest(funding(0), 0, 'live');
    expect(p.cut(100, true, 100)!.jobs[0]).toMatchObject({ jobId: 'funding-13-13', prevLastSeq: 7n });
  });

  it('dead-letters invalid frames under the shard they would have had, raw kept', () => {
    const { p, rejected, counts } = pipeline({ frameBytesMax: 600 });
    p.ingest(Buffer.from('{"user_id":1,"sequence_id":1,"event_type":"DEPOSIT","amount":-5,"currency":1,"related_id":0,"created_at":1}'), 0, 'live');
    p.ingest(Buffer.from([0xff, 0x00]), 0, 'live');
    p.ingest(Buffer.from(`{"pad":"${'x'.repeat(700)}"}`), 0, 'live');
    p.ingest(Buffer.from(trade(1).toString().replace('"quantity":5', '"quantity":5.5')), 0, 'live');
    expect(rejected.map((r) => [r.shard, r.field])).toEqual([
      ['funding', 'amount'],
      ['unrouted', '(root)'],
      ['unrouted', '(root)'],
      ['btc_usdt', 'quantity'],
    ]);
    expect(rejected[1]!.raw).toBe('base64:/wA=');
    expect(rejected[2]!.raw).toHaveLength(600);
    expect(rejected[2]!.reason).toMatch(/exceeds 600/);
    expect(counts.invalid.total('live')).toBe(4);
    expect(p.cut(100, true, 100)).toBeUndefined();
  });

  it('settles a message that arrives after its gap was recorded when its shard can still take it in order, and marks the gap filled', () => {
    const { p, rejected, fills, counts } = pipeline({ batchMessagesMax: 50 });
    p.ingest(trade(1, 'eth_usdt'), 0, 'live');
    p.ingest(trade(4), 0, 'live');
    expect(p.skipHole('global', 20)).toEqual({ fromSeq: 2n, toSeq: 3n });
    p.cut(20, true, 100);
    // eth_usdt's last is 1: its 2 still fits in order.
    p.ingest(trade(2, 'eth_usdt'), 30, 'live');
    const cut = p.cut(40, true, 100)!;
    expect(cut.jobs.map((j) => [j.jobId, j.prevLastSeq])).toEqual([['eth_usdt-2-2', 1n]]);
    expect(cut.marks).toMatchObject({ eth_usdt: '2' });
    expect(rejected).toEqual([]);
    expect(fills).toEqual([{ stream: 'global', gap: { fromSeq: 2n, toSeq: 3n }, seq: 2n, shard: 'eth_usdt', outcome: 'settled' }]);
    expect(counts.late.total('settled')).toBe(1);
    expect(counts.duplicates.sum()).toBe(0);
    // A second copy of it is a plain duplicate.
    p.ingest(trade(2, 'eth_usdt'), 50, 'live');
    expect(counts.duplicates.total('global')).toBe(1);
    expect(fills).toHaveLength(1);
  });

  it('dead-letters a message that arrives after its gap was recorded when its shard is already past it, saying so', () => {
    const { p, rejected, fills, counts } = pipeline({ sequenceScope: 'per_symbol' });
    p.ingest(trade(1), 0, 'live');
    p.ingest(trade(3), 0, 'live');
    p.skipHole('btc_usdt', 20);
    p.ingest(trade(2), 30, 'live');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ shard: 'btc_usdt', field: 'output_sequence', origin: 'live', raw: trade(2).toString() });
    expect(rejected[0]!.reason).toBe(
      "Invalid message: output_sequence 2 arrived after its gap 2-2 of stream btc_usdt was recorded, and shard btc_usdt had already taken 3; applying it now would break the shard's order",
    );
    expect(fills).toEqual([{ stream: 'btc_usdt', gap: { fromSeq: 2n, toSeq: 2n }, seq: 2n, shard: 'btc_usdt', outcome: 'dead_letter' }]);
    expect(counts.late.total('dead_letter')).toBe(1);
    expect(seqsOf(p.cut(40, true, 100)!.jobs, 'btc_usdt')).toEqual([1n, 3n]);
  });

  it('dead-letters a funding event whose numbering differs from its stream, naming it', () => {
    const numbered = pipeline({ fundingNumbering: 'numbered' });
    numbered.p.ingest(funding(0), 0, 'live');
    expect(numbered.rejected.map((r) => [r.shard, r.field])).toEqual([['funding', 'sequence_id']]);
    expect(numbered.rejected[0]!.reason).toMatch(/^Invalid message: sequence_id 0 \(unnumbered\) on the funding stream, which is numbered \(funding_numbering: numbered\)/);

    const unnumbered = pipeline({ fundingNumbering: 'unnumbered' });
    unnumbered.p.ingest(funding(5), 0, 'live');
    expect(unnumbered.rejected[0]!.reason).toMatch(/sequence_id 5 \(numbered\) on the funding stream, which is unnumbered/);

    // auto: the first event fixes the numbering; a numbered event can no longer be dropped as
    // a "duplicate" of a number the ingestor assigned.
    const auto = pipeline();
    auto.p.ingest(funding(1), 0, 'live');
    auto.p.ingest(funding(0), 0, 'live');
    auto.p.ingest(funding(2), 0, 'live');
    expect(auto.rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/sequence_id 0 \(unnumbered\).*funding_numbering: auto, fixed by its first event/)]);
    expect(seqsOf(auto.p.cut(100, true, 100)!.jobs, 'funding')).toEqual([1n, 2n]);
    // auto after a restart of an unnumbered stream (it had assigned numbers): numbered is refused.
    const resumed = pipeline({ state: new Map([['funding', 4n], ['funding:assigned', 4n]]) });
    resumed.p.ingest(funding(5), 0, 'live');
    expect(resumed.rejected).toHaveLength(1);
  });

  it('starts over from a rebuilt state, dropping what it held', () => {
    const { p } = pipeline({ batchMessagesMax: 50 });
    p.ingest(trade(1), 0, 'live');
    p.ingest(trade(3), 0, 'live');
    p.reset(new Map([['global', 10n], ['btc_usdt', 9n], ['eth_usdt', 10n]]));
    expect(p.heldCount).toBe(0);
    expect(p.batchedCount).toBe(0);
    expect(p.replayStarts()).toEqual([{ stream: 'global', fromSeq: 11n }, { stream: 'funding', fromSeq: 1n }]);
    p.ingest(trade(11), 0, 'replay');
    expect(p.cut(100, true, 100)!.jobs.map((j) => [j.jobId, j.prevLastSeq])).toEqual([['btc_usdt-11-11', 9n]]);
  });
});
