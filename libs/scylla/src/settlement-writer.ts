/**
 * The statements of one settlement LOGGED BATCH: trade rows, per-user history rows, ledger rows,
 * absolute balance rows, dead letters, an optional correction record, and the shard watermark,
 * all `USING TIMESTAMP t`. The settler builds them from a plan; the benchmark builds them from
 * precomputed rows and executes them directly as the "raw ceiling" path, so both measure the
 * same writes.
 */
import cassandra from 'cassandra-driver';
import { encodeCorrectedRows, type BalanceRow, type TradeSide, type CorrectedRow, type FundingMessage, type TradeMessage } from '@settlement/domain';
import { u64ToCql, CONSISTENCY, type ScyllaClientOptions } from './client.js';
import { deadLetterId } from './dead-letters.js';
import { SETTLED_TRADE_COLUMNS, USER_TRADE_COLUMNS, insertCql, settledTradeValues, userTradeValues } from './settled-trade-row.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;

export interface CqlStatement {
  readonly query: string;
  readonly params: unknown[];
}

export interface SettlementDeadLetter {
  readonly seq: bigint | undefined;
  /** Names the field and the value. */
  readonly reason: string;
  readonly field: string | undefined;
  readonly jobId: string | undefined;
  readonly raw: string;
}

/** A reconciler correction, recorded in the same batch as the rows it changes. */
export interface CorrectionRecord {
  readonly correctionId: string;
  readonly reconciliationJobId: string;
  /** The rows with their before/after values (stored as encodeCorrectedRows' JSON). */
  readonly rows: readonly CorrectedRow[];
}

/** Everything one batch writes, already computed. */
export interface SettlementBatchRows {
  readonly shard: string;
  /** `USING TIMESTAMP` of every statement, µs; strictly above the shard's previous batch. */
  readonly writeTimestampUs: bigint;
  readonly trades: readonly TradeMessage[];
  readonly fundingEvents: readonly FundingMessage[];
  readonly balanceRows: readonly BalanceRow[];
  readonly deadLetters: readonly SettlementDeadLetter[];
  readonly correction?: CorrectionRecord | undefined;
  readonly watermark: {
    readonly lastSeq: bigint;
    /** Highest trade_id settled in the shard including this batch; omitted when the batch has no trade. */
    readonly maxTradeId?: bigint | undefined;
    readonly batchCount: bigint;
    readonly jobId: string;
    readonly updatedAt: Date;
  };
}

export interface SettlementBatchOptions {
  /** A driver consistency (CONSISTENCY[...]). */
  readonly consistency: number;
}

/**
 * Executes one settlement batch. The options are explicit because the driver's defaults would
 * change retries (isIdempotent false) and atomicity (logged): the batch is idempotent by design
 * (absolute values, fixed timestamp), so the driver may retry it.
 */
export async function executeSettlementBatch(client: cassandra.Client, statements: readonly CqlStatement[], options: SettlementBatchOptions): Promise<void> {
  await client.batch(statements as CqlStatement[], { prepare: true, logged: true, isIdempotent: true, consistency: options.consistency });
}

export interface SettlementWriterOptions {
  readonly client: cassandra.Client;
  /** Validated keyspace name. */
  readonly keyspace: string;
  /** Validated symbol names: one settled_trades_<symbol> table each. */
  readonly symbols: readonly string[];
  readonly consistency: ScyllaClientOptions['consistency'];
  /** Receives fees; its history rows have side 'fee'. */
  readonly feeAccountUserId: bigint;
}

/** Query texts of one keyspace; the driver prepares each text once per connection pool. */
export class SettlementWriter {
  readonly consistency: number;
  private readonly tradeCql: ReadonlyMap<string, string>;
  private readonly tradeByUserCql: string;
  private readonly ledgerCql: string;
  private readonly ledgerByUserCql: string;
  private readonly balanceCql: string;
  private readonly deadLetterCql: string;
  private readonly correctionCql: string;
  private readonly watermarkCql: string;
  private readonly watermarkWithTradeCql: string;

  private readonly client: cassandra.Client;
  private readonly feeAccountUserId: bigint;

  constructor(options: SettlementWriterOptions) {
    const { keyspace, symbols, consistency } = options;
    this.client = options.client;
    this.feeAccountUserId = options.feeAccountUserId;
    for (const name of [keyspace, ...symbols]) {
      if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
    }
    this.consistency = CONSISTENCY[consistency];
    const ks = keyspace;
    this.tradeCql = new Map(symbols.map((symbol) => [symbol, insertCql(`${ks}.settled_trades_${symbol}`, SETTLED_TRADE_COLUMNS)]));
    this.tradeByUserCql = insertCql(`${ks}.trades_by_user`, USER_TRADE_COLUMNS);
    this.ledgerCql = `INSERT INTO ${ks}.ledger_events (seq, user_id, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.ledgerByUserCql = `INSERT INTO ${ks}.ledger_events_by_user (user_id, seq, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.balanceCql = `INSERT INTO ${ks}.user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.deadLetterCql = `INSERT INTO ${ks}.dead_letters (shard, dead_letter_id, source, reason, field, seq, job_id, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.correctionCql = `INSERT INTO ${ks}.balance_corrections (correction_id, shard, reconciliation_job_id, applied_at, rows) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.watermarkCql = `INSERT INTO ${ks}.shard_watermarks (shard, last_seq, write_ts, batch_count, last_job_id, updated_at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.watermarkWithTradeCql = `INSERT INTO ${ks}.shard_watermarks (shard, last_seq, write_ts, batch_count, last_job_id, updated_at, max_trade_id) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
  }

  /** The batch's statements, the watermark last. */
  buildStatements(rows: SettlementBatchRows): CqlStatement[] {
    const t = rows.writeTimestampUs;
    const out: CqlStatement[] = [];
    for (const trade of rows.trades) this.pushTrade(out, trade, t);
    for (const event of rows.fundingEvents) {
      const createdAt = u64ToCql(event.createdAt);
      const relatedId = u64ToCql(event.relatedId);
      out.push({ query: this.ledgerCql, params: [event.seq, event.userId, event.sequenceId, event.eventType, event.amount, event.currency, relatedId, createdAt, t] });
      out.push({ query: this.ledgerByUserCql, params: [event.userId, event.seq, event.sequenceId, event.eventType, event.amount, event.currency, relatedId, createdAt, t] });
    }
    for (const row of rows.balanceRows) {
      out.push({ query: this.balanceCql, params: [row.userId, row.assetId, rows.shard, row.available, row.locked, row.version, t] });
    }
    for (const letter of rows.deadLetters) {
      // The id is the letter's identity: an in-place retry, a re-delivered or re-applied job
      // rewrites the same row.
      out.push({
        query: this.deadLetterCql,
        params: [rows.shard, deadLetterId({ shard: rows.shard, source: 'settler', seq: letter.seq, jobId: letter.jobId, raw: letter.raw }), 'settler', letter.reason, letter.field ?? null, letter.seq ?? null, letter.jobId ?? null, letter.raw, rows.watermark.updatedAt, t],
      });
    }
    if (rows.correction !== undefined) {
      const c = rows.correction;
      out.push({ query: this.correctionCql, params: [c.correctionId, rows.shard, c.reconciliationJobId, rows.watermark.updatedAt, encodeCorrectedRows(c.rows), t] });
    }
    const w = rows.watermark;
    out.push(
      w.maxTradeId === undefined
        ? { query: this.watermarkCql, params: [rows.shard, w.lastSeq, t, w.batchCount, w.jobId, w.updatedAt, t] }
        : { query: this.watermarkWithTradeCql, params: [rows.shard, w.lastSeq, t, w.batchCount, w.jobId, w.updatedAt, u64ToCql(w.maxTradeId), t] },
    );
    return out;
  }

  async execute(statements: readonly CqlStatement[]): Promise<void> {
    await executeSettlementBatch(this.client, statements, { consistency: this.consistency });
  }

  private pushTrade(out: CqlStatement[], trade: TradeMessage, t: bigint): void {
    const query = this.tradeCql.get(trade.shard);
    if (query === undefined) throw new Error(`no settled_trades table for symbol ${JSON.stringify(trade.shard)}`);
    out.push({ query, params: [...settledTradeValues(trade), t] });
    // One history row per party.
    const history = (userId: bigint, side: TradeSide): CqlStatement => ({ query: this.tradeByUserCql, params: [...userTradeValues(userId, side, trade), t] });
    out.push(history(trade.buyerUserId, 'buyer'));
    out.push(history(trade.sellerUserId, 'seller'));
    if (trade.buyerFee > 0n || trade.sellerFee > 0n) out.push(history(this.feeAccountUserId, 'fee'));
  }
}
