/**
 * Writes settled trades and funding events with the settler's own statements
 * (SettlementWriter.buildStatements), at fenced write timestamps like the settler's (above 2^52),
 * without running a settler: the history, export and backfill tests need many rows quickly.
 */
import type cassandra from 'cassandra-driver';
import type { SettlementConfig } from '@settlement/config';
import { FUNDING_SHARD, type BalanceRow, type FundingMessage, type TradeMessage } from '@settlement/domain';
import { SettlementWriter } from '@settlement/scylla';
import { funding, trade } from './support.js';

/** 2^52 + epoch 1 · 2^40: what a settler's first batch writes with (libs/domain/src/fencing.ts). */
export const FENCED_TS_BASE = 2n ** 52n + 2n ** 40n;

export class HistoryFixture {
  private readonly writer: SettlementWriter;
  private timestampUs = FENCED_TS_BASE;
  private readonly seqs = new Map<string, bigint>();

  constructor(client: cassandra.Client, config: Readonly<SettlementConfig>) {
    this.writer = new SettlementWriter({
      client,
      keyspace: config.scylladb.keyspace,
      symbols: config.symbols.map((s) => s.name),
      consistency: config.scylladb.consistency,
      feeAccountUserId: BigInt(config.fee_account_user_id),
    });
  }

  nextSeq(shard: string): bigint {
    const seq = (this.seqs.get(shard) ?? 0n) + 1n;
    this.seqs.set(shard, seq);
    return seq;
  }

  /** One batch of trades of one symbol; returns the messages written. */
  async trades(symbol: string, fields: ReadonlyArray<Parameters<typeof trade>[1] & { settledAt: bigint }>): Promise<TradeMessage[]> {
    const messages = fields.map((f) => {
      const seq = this.nextSeq(symbol);
      return trade(seq, { shard: symbol, ...baseQuote(symbol), ...f });
    });
    await this.write(symbol, messages, []);
    return messages;
  }

  async funding(events: ReadonlyArray<{ userId: bigint; type: FundingMessage['eventType']; amount: bigint; currency: number; createdAt: bigint }>): Promise<FundingMessage[]> {
    const messages = events.map((e) => ({ ...funding(this.nextSeq(FUNDING_SHARD), e.userId, e.type, e.amount, e.currency), createdAt: e.createdAt }));
    await this.write(FUNDING_SHARD, [], messages);
    return messages;
  }

  /** Balance rows of one shard, as a settler batch writes them. */
  async balances(shard: string, rows: readonly BalanceRow[]): Promise<void> {
    await this.write(shard, [], [], rows);
  }

  private async write(shard: string, trades: TradeMessage[], fundingEvents: FundingMessage[], balanceRows: readonly BalanceRow[] = []): Promise<void> {
    this.timestampUs += 1n;
    const last = trades.at(-1)?.seq ?? fundingEvents.at(-1)?.seq ?? 0n;
    const statements = this.writer.buildStatements({
      shard,
      writeTimestampUs: this.timestampUs,
      trades,
      fundingEvents,
      balanceRows,
      deadLetters: [],
      watermark: { lastSeq: last, batchCount: this.timestampUs - FENCED_TS_BASE, jobId: `fixture-${last}`, updatedAt: new Date() },
    });
    // Bounded: a few tens of statements per batch, as the settler's chunks are.
    for (let i = 0; i < statements.length; i += 40) await this.writer.execute(statements.slice(i, i + 40));
  }
}

function baseQuote(symbol: string): { baseAsset: number; quoteAsset: number } {
  if (symbol === 'eth_usdt') return { baseAsset: 3, quoteAsset: 2 };
  if (symbol === 'btc_eth') return { baseAsset: 1, quoteAsset: 3 };
  return { baseAsset: 1, quoteAsset: 2 };
}
