import type cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { FUNDING_SHARD, planSettlement, type FundingMessage, type TradeMessage } from '@settlement/domain';
import { SettlementWriter } from './settlement-writer.js';

const trade: TradeMessage = {
  kind: 'trade', shard: 'btc_usdt', seq: 7n, tradeId: 2n ** 64n - 1n, buyOrderId: 2n ** 63n, sellOrderId: 2n, buyerUserId: 10n, sellerUserId: 11n,
  price: 60_000n, quantity: 100_000_000n, quoteAmount: 60_000n, baseAsset: 1, quoteAsset: 2, buyerRefund: 0n, sellerRefund: 0n,
  buyerFee: 10n, sellerFee: 0n, matchSeq: 1n, outputSequence: 7n, settledAt: 1_700_000_000_000n,
  buyerQuoteVersion: 2n ** 64n - 2n, buyerBaseVersion: 0n, sellerBaseVersion: 0n, sellerQuoteVersion: 0n,
};
const deposit: FundingMessage = { kind: 'funding', shard: FUNDING_SHARD, seq: 3n, userId: 5n, sequenceId: 3n, eventType: 'DEPOSIT', amount: 9n, currency: 1, relatedId: 2n ** 64n - 1n, createdAt: 4n };

const writer = new SettlementWriter({ client: {} as cassandra.Client, keyspace: 'ks', symbols: ['btc_usdt'], consistency: 'local_quorum', feeAccountUserId: 99n });

describe('SettlementWriter.buildStatements', () => {
  it('writes as many statements as the plan counted, every one USING TIMESTAMP t, the watermark last', () => {
    const plan = planSettlement({
      shard: 'btc_usdt', market: { name: 'btc_usdt', baseAsset: 1, quoteAsset: 2, quoteDivisor: 100_000_000n }, assetIds: new Set([1, 2]),
      feeAccountUserId: 99n, afterSeq: 0n, messages: [trade], settledTradeSeqs: new Map(), current: () => undefined, batchStatementsMax: 600,
    });
    const chunk = plan.chunks[0]!;
    const statements = writer.buildStatements({
      shard: 'btc_usdt', writeTimestampUs: 123n, trades: chunk.trades, fundingEvents: [], balanceRows: chunk.rows, deadLetters: [],
      watermark: { lastSeq: chunk.lastSeq, batchCount: 4n, jobId: 'btc_usdt-7-7', updatedAt: new Date(0) },
    });
    expect(statements).toHaveLength(chunk.statementCount);
    for (const s of statements) {
      expect(s.query).toMatch(/^INSERT INTO ks\.\w+ \(.*\) VALUES \(.*\) USING TIMESTAMP \?$/);
      expect(s.params.at(-1)).toBe(123n);
      expect(s.query.split('?').length - 1).toBe(s.params.length);
    }
    // u64 ids above 2^63 are stored as their two's complement.
    expect(statements[0]!.params.slice(0, 3)).toEqual([-1n, 7n, -(2n ** 63n)]);
    const sides = statements.filter((s) => s.query.includes('user_trades')).map((s) => [s.params[0], s.params[2], s.params[4]]);
    // Bucket 7 / 131 072 = 0.
    expect(sides).toEqual([[10n, 0n, 'buyer'], [11n, 0n, 'seller'], [99n, 0n, 'fee']]);
    expect(statements.filter((s) => s.query.includes('trades_by_user'))).toEqual([]);
    const index = statements.filter((s) => s.query.includes('user_history_buckets')).map((s) => s.params);
    expect(index).toEqual([[10n, 'btc_usdt', 0n, 123n], [11n, 'btc_usdt', 0n, 123n], [99n, 'btc_usdt', 0n, 123n]]);
    expect(statements.at(-1)!.params).toEqual(['btc_usdt', 7n, 123n, 4n, 'btc_usdt-7-7', new Date(0), 123n]);
  });

  it('writes one index row per distinct (user, stream, bucket), both layouts while dual writing, and no more than the plan counted', () => {
    const dual = new SettlementWriter({ client: {} as cassandra.Client, keyspace: 'ks', symbols: ['btc_usdt'], consistency: 'one', feeAccountUserId: 99n, history: { bucketSeqs: 16n, dualWrite: true } });
    const trades = [15n, 16n, 17n, 40n].map((seq) => ({ ...trade, seq, tradeId: seq }));
    const plan = planSettlement({
      shard: 'btc_usdt', market: { name: 'btc_usdt', baseAsset: 1, quoteAsset: 2, quoteDivisor: 100_000_000n }, assetIds: new Set([1, 2]),
      feeAccountUserId: 99n, afterSeq: 0n, messages: trades, settledTradeSeqs: new Map(), current: () => undefined, batchStatementsMax: 600, dualHistory: true,
    });
    const chunk = plan.chunks[0]!;
    const statements = dual.buildStatements({
      shard: 'btc_usdt', writeTimestampUs: 9n, trades: chunk.trades, fundingEvents: [], balanceRows: chunk.rows, deadLetters: [],
      watermark: { lastSeq: chunk.lastSeq, batchCount: 1n, jobId: 'j', updatedAt: new Date(0) },
    });
    expect(statements.length).toBeLessThanOrEqual(chunk.statementCount);
    expect(statements.filter((s) => s.query.includes('trades_by_user'))).toHaveLength(12);
    expect(statements.filter((s) => s.query.includes('user_trades')).map((s) => s.params[2])).toEqual([0n, 0n, 0n, 1n, 1n, 1n, 1n, 1n, 1n, 2n, 2n, 2n]);
    // Buckets 0, 1 (seqs 16 and 17) and 2, for each of the three users.
    expect(statements.filter((s) => s.query.includes('user_history_buckets'))).toHaveLength(9);
    dual.setHistoryMode({ bucketSeqs: 16n, dualWrite: false });
    expect(dual.buildStatements({ shard: 'btc_usdt', writeTimestampUs: 9n, trades: chunk.trades, fundingEvents: [], balanceRows: [], deadLetters: [], watermark: { lastSeq: 40n, batchCount: 1n, jobId: 'j', updatedAt: new Date(0) } }).filter((s) => s.query.includes('trades_by_user'))).toEqual([]);
  });

  it('writes a funding event to ledger_events and user_ledger with its index row, and dead letters with their reason', () => {
    const statements = writer.buildStatements({
      shard: FUNDING_SHARD, writeTimestampUs: 5n, trades: [], fundingEvents: [deposit], balanceRows: [],
      deadLetters: [{ seq: 4n, reason: 'Duplicate trade', field: 'tradeId', jobId: 'j', raw: '{}' }],
      watermark: { lastSeq: 4n, batchCount: 1n, jobId: 'j', updatedAt: new Date(0) },
    });
    expect(statements.map((s) => s.query.split(' ')[2])).toEqual(['ks.ledger_events', 'ks.user_ledger', 'ks.user_history_buckets', 'ks.dead_letters', 'ks.shard_watermarks']);
    expect(statements[0]!.params).toEqual([3n, 5n, 3n, 'DEPOSIT', 9n, 1, -1n, 4n, 5n]);
    expect(statements[1]!.params).toEqual([5n, 0n, 3n, 3n, 'DEPOSIT', 9n, 1, -1n, 4n, 5n]);
    expect(statements[2]!.params).toEqual([5n, 'funding', 0n, 5n]);
    expect(statements[3]!.params.slice(2, 7)).toEqual(['settler', 'Duplicate trade', 'tradeId', 4n, 'j']);
  });

  it('refuses names that are not identifiers', () => {
    expect(() => new SettlementWriter({ client: {} as cassandra.Client, keyspace: 'ks; drop', symbols: [], consistency: 'one', feeAccountUserId: 0n })).toThrow(/not a plain identifier/);
  });
});
