/**
 * The statements of one settlement LOGGED BATCH: trade rows, per-user history rows, ledger rows,
 * absolute balance rows, dead letters, an optional correction record, and the shard watermark,
 * all `USING TIMESTAMP t`. The settler builds them from a plan; the benchmark builds them from
 * precomputed rows and executes them directly as the "raw ceiling" path, so both measure the
 * same writes.
 */
import cassandra from 'cassandra-driver';
import { DEFAULT_HISTORY_BUCKET_SEQS, FUNDING_HISTORY_STREAM, encodeCorrectedRows, historyBucket, type BalanceRow, type CorrectedRow, type FundingMessage, type TradeMessage, type TradeSide } from '@settlement/domain';
import { u64ToCql, CONSISTENCY, type ScyllaClientOptions } from './client.js';
import { deadLetterId } from './dead-letters.js';
import type { HistoryWriteMode } from './history-layout.js';
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
  /**
   * The keyspace's bucket width (history_layout) and whether the pre-bucket tables are written
   * too. Default: DEFAULT_HISTORY_BUCKET_SEQS, bucketed tables only. The settler passes what the
   * keyspace says and keeps it current with setHistoryMode.
   */
  readonly history?: HistoryWriteMode | undefined;
}

/** Query texts of one keyspace; the driver prepares each text once per connection pool. */
export class SettlementWriter {
  readonly consistency: number;
  private readonly tradeCql: ReadonlyMap<string, string>;
  private readonly tradeByUserCql: string;
  private readonly ledgerCql: string;
  private readonly ledgerByUserCql: string;
  private readonly userTradeCql: string;
  private readonly userLedgerCql: string;
  private readonly historyBucketCql: string;
  private history: HistoryWriteMode;
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
    this.userTradeCql = `INSERT INTO ${ks}.user_trades (user_id, symbol, bucket, seq, side, trade_id, buyer_user_id, seller_user_id, base_asset, quote_asset, price, quantity, quote_amount, buyer_refund, seller_refund, buyer_fee, seller_fee, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.userLedgerCql = `INSERT INTO ${ks}.user_ledger (user_id, bucket, seq, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.historyBucketCql = `INSERT INTO ${ks}.user_history_buckets (user_id, stream, bucket) VALUES (?, ?, ?) USING TIMESTAMP ?`;
    this.history = options.history ?? { bucketSeqs: DEFAULT_HISTORY_BUCKET_SEQS, dualWrite: false };
    historyBucket(0n, this.history.bucketSeqs);
    this.balanceCql = `INSERT INTO ${ks}.user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.deadLetterCql = `INSERT INTO ${ks}.dead_letters (shard, dead_letter_id, source, reason, field, seq, job_id, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.correctionCql = `INSERT INTO ${ks}.balance_corrections (correction_id, shard, reconciliation_job_id, applied_at, rows) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.watermarkCql = `INSERT INTO ${ks}.shard_watermarks (shard, last_seq, write_ts, batch_count, last_job_id, updated_at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
    this.watermarkWithTradeCql = `INSERT INTO ${ks}.shard_watermarks (shard, last_seq, write_ts, batch_count, last_job_id, updated_at, max_trade_id) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`;
  }

  /** How history rows are written from the next batch on (the settler re-reads it every minute). */
  get historyMode(): HistoryWriteMode {
    return this.history;
  }

  setHistoryMode(mode: HistoryWriteMode): void {
    historyBucket(0n, mode.bucketSeqs);
    this.history = mode;
  }

  /** The batch's statements, the watermark last. */
  buildStatements(rows: SettlementBatchRows): CqlStatement[] {
    const t = rows.writeTimestampUs;
    const out: CqlStatement[] = [];
    // One user_history_buckets row per distinct (user, stream, bucket) of the batch.
    const buckets = new Map<string, [bigint, string, bigint]>();
    const bucketOf = (userId: bigint, stream: string, seq: bigint): bigint => {
      const bucket = historyBucket(seq, this.history.bucketSeqs);
      const key = `${userId}/${stream}/${bucket}`;
      if (!buckets.has(key)) buckets.set(key, [userId, stream, bucket]);
      return bucket;
    };
    for (const trade of rows.trades) this.pushTrade(out, trade, t, bucketOf);
    for (const event of rows.fundingEvents) {
      const createdAt = u64ToCql(event.createdAt);
      const relatedId = u64ToCql(event.relatedId);
      const bucket = bucketOf(event.userId, FUNDING_HISTORY_STREAM, event.seq);
      out.push({ query: this.ledgerCql, params: [event.seq, event.userId, event.sequenceId, event.eventType, event.amount, event.currency, relatedId, createdAt, t] });
      out.push({ query: this.userLedgerCql, params: [event.userId, bucket, event.seq, event.sequenceId, event.eventType, event.amount, event.currency, relatedId, createdAt, t] });
      if (this.history.dualWrite) {
        out.push({ query: this.ledgerByUserCql, params: [event.userId, event.seq, event.sequenceId, event.eventType, event.amount, event.currency, relatedId, createdAt, t] });
      }
    }
    for (const [userId, stream, bucket] of buckets.values()) out.push({ query: this.historyBucketCql, params: [userId, stream, bucket, t] });
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

  private pushTrade(out: CqlStatement[], trade: TradeMessage, t: bigint, bucketOf: (userId: bigint, stream: string, seq: bigint) => bigint): void {
    const query = this.tradeCql.get(trade.shard);
    if (query === undefined) throw new Error(`no settled_trades table for symbol ${JSON.stringify(trade.shard)}`);
    out.push({ query, params: [...settledTradeValues(trade), t] });
    // One history row per party; every column filled, so the reconciler can recompute a
    // party's balance from its rows alone with tradeEffects().
    const tradeId = u64ToCql(trade.tradeId);
    const settledAt = u64ToCql(trade.settledAt);
    const history = (userId: bigint, side: TradeSide): void => {
      const values = [
        tradeId, trade.buyerUserId, trade.sellerUserId, trade.baseAsset, trade.quoteAsset,
        trade.price, trade.quantity, trade.quoteAmount, trade.buyerRefund, trade.sellerRefund, trade.buyerFee, trade.sellerFee, settledAt, t,
      ];
      out.push({ query: this.userTradeCql, params: [userId, trade.shard, bucketOf(userId, trade.shard, trade.seq), trade.seq, side, ...values] });
      if (this.history.dualWrite) out.push({ query: this.tradeByUserCql, params: [...userTradeValues(userId, side, trade), t] });
    };
    history(trade.buyerUserId, 'buyer');
    history(trade.sellerUserId, 'seller');
    if (trade.buyerFee > 0n || trade.sellerFee > 0n) history(this.feeAccountUserId, 'fee');
  }
}
