/**
 * A settled dataset written straight into Cassandra, for tests of paging and for the full-run
 * benchmark: the statements are the settler's own (SettlementWriter.buildStatements), the rows
 * the domain's applyMessages, so the data has exactly the settled layout. It is written in
 * unlogged multi-statement batches with bounded parallelism, which is fast and good enough for
 * a fixture (a real settler writes LOGGED batches).
 */
import type cassandra from 'cassandra-driver';
import { FUNDING_SHARD, applyMessages, balanceRowKey, type BalanceRow, type FundingMessage, type SettlementMessage, type TradeMessage } from '@settlement/domain';
import { SettlementWriter, type CqlStatement, type HistoryWriteMode } from '@settlement/scylla';

export interface DatasetOptions {
  readonly client: cassandra.Client;
  readonly keyspace: string;
  readonly symbols: readonly string[];
  readonly feeAccountUserId: bigint;
  /** Users 1..users (an even number: they trade in pairs). */
  readonly users: number;
  /** Users whose messages are built and written together. Default 1000. */
  readonly blockUsers?: number;
  /** Batches in flight. Default 8. */
  readonly concurrency?: number;
  /** Statements per unlogged batch. Default 40. */
  readonly statementsPerBatch?: number;
  readonly onBlock?: (usersWritten: number) => void | Promise<void>;
  /** The history layout written (default: bucketed only, the default bucket width). */
  readonly history?: HistoryWriteMode | undefined;
}

export interface DatasetTotals {
  readonly users: number;
  readonly statements: number;
  /** Rows of user_balances written (the fee account's last version of each row counted once per block). */
  readonly balanceRows: number;
  /** Deposits − withdrawals per asset. */
  readonly supply: ReadonlyMap<number, bigint>;
  readonly lastSeq: ReadonlyMap<string, bigint>;
}

const BTC = 1;
const USDT = 2;

/** The messages of one block of users: deposits and locks, then one btc_usdt trade per pair. */
export function blockMessages(firstUser: bigint, count: number, seq: { funding: bigint; trade: bigint }): SettlementMessage[] {
  const messages: SettlementMessage[] = [];
  const funding = (userId: bigint, eventType: FundingMessage['eventType'], amount: bigint, currency: number): FundingMessage => {
    seq.funding += 1n;
    return { kind: 'funding', shard: FUNDING_SHARD, seq: seq.funding, userId, sequenceId: seq.funding, eventType, amount, currency, relatedId: 0n, createdAt: 1_700_000_000_000n };
  };
  for (let i = 0; i < count; i += 2) {
    const buyer = firstUser + BigInt(i);
    const seller = buyer + 1n;
    messages.push(
      funding(buyer, 'DEPOSIT', 10_000_000n + buyer, USDT),
      funding(buyer, 'LOCK', 600_000n, USDT),
      funding(seller, 'DEPOSIT', 1_000n + seller, BTC),
      funding(seller, 'LOCK', 100n, BTC),
    );
    seq.trade += 1n;
    const withFee = i % 4 === 0;
    const trade: TradeMessage = {
      kind: 'trade', shard: 'btc_usdt', seq: seq.trade, tradeId: seq.trade, buyOrderId: seq.trade * 2n, sellOrderId: seq.trade * 2n + 1n,
      buyerUserId: buyer, sellerUserId: seller, price: 1_250_000_000_000n, quantity: 40n, quoteAmount: 500_000n, baseAsset: BTC, quoteAsset: USDT,
      buyerRefund: 100_000n, sellerRefund: 60n, buyerFee: withFee ? 1n : 0n, sellerFee: withFee ? 500n : 0n,
      matchSeq: seq.trade, outputSequence: seq.trade, settledAt: 1_700_000_000_000n,
      buyerQuoteVersion: 0n, buyerBaseVersion: 0n, sellerBaseVersion: 0n, sellerQuoteVersion: 0n,
    };
    messages.push(trade);
  }
  return messages;
}

async function executeBounded(client: cassandra.Client, statements: readonly CqlStatement[], perBatch: number, concurrency: number): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < statements.length) {
      const start = next;
      next += perBatch;
      await client.batch(statements.slice(start, start + perBatch) as CqlStatement[], { prepare: true, logged: false, isIdempotent: true });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

export async function writeDataset(options: DatasetOptions): Promise<DatasetTotals> {
  if (options.users % 2 !== 0) throw new Error('users must be even');
  const blockUsers = options.blockUsers ?? 1000;
  const writer = new SettlementWriter({ client: options.client, keyspace: options.keyspace, symbols: options.symbols, consistency: 'one', feeAccountUserId: options.feeAccountUserId, history: options.history });
  const seq = { funding: 0n, trade: 0n };
  // The fee account is touched by every block: its rows are carried over, the others are not.
  const feeRows = new Map<string, BalanceRow>();
  const supply = new Map<number, bigint>();
  let statements = 0;
  let balanceRows = 0;
  let timestampUs = BigInt(Date.now()) * 1000n;
  for (let first = 1; first <= options.users; first += blockUsers) {
    const count = Math.min(blockUsers, options.users - first + 1);
    const messages = blockMessages(BigInt(first), count, seq);
    const all: CqlStatement[] = [];
    for (const shard of [FUNDING_SHARD, 'btc_usdt']) {
      const shardMessages = messages.filter((m) => m.shard === shard);
      const rows = applyMessages(shardMessages, (_key, userId, assetId) => feeRows.get(`${shard}/${balanceRowKey(userId, assetId)}`), options.feeAccountUserId);
      for (const row of rows.values()) {
        if (row.userId === options.feeAccountUserId) feeRows.set(`${shard}/${balanceRowKey(row.userId, row.assetId)}`, row);
      }
      timestampUs += 1n;
      all.push(
        ...writer.buildStatements({
          shard,
          writeTimestampUs: timestampUs,
          trades: shardMessages.filter((m): m is TradeMessage => m.kind === 'trade'),
          fundingEvents: shardMessages.filter((m): m is FundingMessage => m.kind === 'funding'),
          balanceRows: [...rows.values()],
          deadLetters: [],
          watermark: { lastSeq: shard === FUNDING_SHARD ? seq.funding : seq.trade, batchCount: BigInt(first), jobId: `fixture-${first}`, updatedAt: new Date() },
        }),
      );
      balanceRows += rows.size;
    }
    for (const m of messages) {
      if (m.kind !== 'funding') continue;
      const sign = m.eventType === 'DEPOSIT' ? 1n : m.eventType === 'WITHDRAWAL' ? -1n : 0n;
      supply.set(m.currency, (supply.get(m.currency) ?? 0n) + sign * m.amount);
    }
    await executeBounded(options.client, all, options.statementsPerBatch ?? 40, options.concurrency ?? 8);
    statements += all.length;
    await options.onBlock?.(first + count - 1);
  }
  return { users: options.users, statements, balanceRows, supply, lastSeq: new Map([[FUNDING_SHARD, seq.funding], ['btc_usdt', seq.trade]]) };
}
