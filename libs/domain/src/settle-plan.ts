/**
 * What a settler writes for one job, decided without I/O: which messages apply, which are
 * dead-lettered (and why), the coalesced absolute balance rows, and how the job is cut into
 * LOGGED BATCHes of bounded size. Each chunk is written atomically with its own watermark.
 */
import { balanceRowKey, applyMessage, emptyRow, type BalanceRow, type BalanceRowKey } from './balances.js';
import type { Market } from './catalog.js';
import { DomainError } from './domain-error.js';
import { encodeBigints } from './job.js';
import type { FundingMessage, SettlementMessage, TradeMessage } from './messages.js';

/** Why a message is dead-lettered instead of applied. */
export const DeadLetterCode = {
  DUPLICATE_TRADE: 'DUPLICATE_TRADE',
  AMOUNT_OVERFLOW: 'AMOUNT_OVERFLOW',
  WRONG_SHARD: 'WRONG_SHARD',
  UNKNOWN_ASSET: 'UNKNOWN_ASSET',
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  INVALID_JOB: 'INVALID_JOB',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
} as const;
export type DeadLetterCode = (typeof DeadLetterCode)[keyof typeof DeadLetterCode];

/** A message that will never apply, kept with its reason. */
export interface PlannedDeadLetter {
  /** Shard sequence, when the message carried a usable one. */
  readonly seq: bigint | undefined;
  readonly code: DeadLetterCode | string;
  /** Names the field and the value. */
  readonly reason: string;
  readonly field: string | undefined;
  /** The message as JSON (bigints as decimal strings). */
  readonly raw: string;
}

export interface SettleChunk {
  readonly trades: TradeMessage[];
  readonly funding: FundingMessage[];
  /** Final absolute value of every row this chunk changes. */
  readonly rows: BalanceRow[];
  readonly deadLetters: PlannedDeadLetter[];
  /** Highest sequence this chunk settles (applied, already settled or dead-lettered). */
  lastSeq: bigint;
  /** Statements the chunk will write, the watermark included. */
  statementCount: number;
  /** Estimated size of the batch as Cassandra measures it (estimateBatchBytes), bytes. */
  bytesEstimate: number;
}

export interface SettlePlanInput {
  readonly shard: string;
  /** The shard's market; undefined for the funding shard. */
  readonly market: Market | undefined;
  readonly assetIds: ReadonlySet<number>;
  readonly feeAccountUserId: bigint;
  /**
   * Sequence the plan starts after: the shard watermark, or for a job applied again after its
   * writer stopped mid-write, the job's own start. Messages at or below it are not passed here.
   */
  readonly afterSeq: bigint;
  /** Valid messages above the watermark, in sequence order. */
  readonly messages: readonly SettlementMessage[];
  /** Messages the job decoder already rejected, each with the sequence it carried (if usable). */
  readonly rejected?: readonly PlannedDeadLetter[];
  /** trade_id → seq of trades of this shard already in its settled_trades table. */
  readonly settledTradeSeqs: ReadonlyMap<bigint, bigint>;
  /** The stored (or cached) row; undefined means the row does not exist yet. */
  readonly current: (key: BalanceRowKey, userId: bigint, assetId: number) => BalanceRow | undefined;
  /** Statements per LOGGED BATCH before the job is split (a single message is never split). */
  readonly batchStatementsMax: number;
  /**
   * Estimated bytes per LOGGED BATCH before the job is split (Cassandra ≥ 2.2 rejects a batch
   * above batch_size_fail_threshold_in_kb, default 50 KB). A message that alone exceeds it is
   * dead-lettered (BATCH_TOO_LARGE). Default: no byte bound.
   */
  readonly batchBytesMax?: number;
  /**
   * The history is also written to the pre-bucket tables (trades_by_user,
   * ledger_events_by_user) while `settle migrate-history` has not finished: one more statement
   * per history row. Default false.
   */
  readonly dualHistory?: boolean;
}

export interface SettlePlan {
  readonly chunks: SettleChunk[];
  readonly applied: number;
  /** Trades found in settled_trades under the same sequence: written before, not applied again. */
  readonly alreadySettled: number;
  readonly deadLettered: number;
}

/** History rows of a trade: one per party (buyer, seller, and the fee account when a fee is paid). */
function tradeParties(trade: Pick<TradeMessage, 'buyerFee' | 'sellerFee'>): number {
  return trade.buyerFee > 0n || trade.sellerFee > 0n ? 3 : 2;
}

/**
 * Statements a trade writes besides balance rows: the trade row, and per party a user_trades
 * row and a user_history_buckets row (counted per row: the writer writes one per distinct
 * (user, stream, bucket) of the batch, never more), plus a trades_by_user row while the
 * history is written twice (`dualHistory`).
 */
export function tradeRowStatements(trade: Pick<TradeMessage, 'buyerFee' | 'sellerFee'>, dualHistory = false): number {
  return 1 + tradeParties(trade) * (dualHistory ? 3 : 2);
}

/** A funding event writes ledger_events, user_ledger and its user_history_buckets row. */
export const FUNDING_ROW_STATEMENTS = 3;

/** FUNDING_ROW_STATEMENTS, plus ledger_events_by_user while the history is written twice. */
export function fundingRowStatements(dualHistory = false): number {
  return FUNDING_ROW_STATEMENTS + (dualHistory ? 1 : 0);
}

/**
 * Estimated bytes of each statement in a batch, as Cassandra sizes a batch against its
 * thresholds (the data size of the mutations): per cell its value, timestamp and column name.
 * Measured against the local Cassandra's batch-size warnings: a 50-message trade job of the
 * benchmark logs 126-129 KB, ~2.5 KB a trade with its history and balance rows; these give
 * ~2.6 KB, slightly above, so a bound in these units errs on the safe side.
 */
export const STATEMENT_BYTES = {
  /** settled_trades_<symbol>: 22 columns. */
  trade: 800,
  /** user_trades (trades_by_user): 17 columns and the bucket. */
  tradeHistory: 610,
  /** user_history_buckets: its key alone (user, stream, bucket), no regular cell. */
  historyIndex: 120,
  /** ledger_events / user_ledger (ledger_events_by_user): 8 columns. */
  ledger: 300,
  /** user_balances: 6 columns. */
  balance: 220,
  /** shard_watermarks: 7 columns. */
  watermark: 260,
  /** dead_letters without its reason and raw text. */
  deadLetterBase: 200,
} as const;

/** Smallest byte bound a "batch too large" rejection can bring settler.batch_bytes_max down to. */
export const BATCH_BYTES_MIN = 4_096;

/**
 * The byte bound to plan with after Cassandra rejected a batch as too large: half the current
 * one (the estimate was off for this data), never below BATCH_BYTES_MIN, where a message that
 * does not fit alone is dead-lettered instead. The job is then planned again: the chunk splits.
 */
export function shrinkBatchBytes(current: number): number {
  return Math.max(BATCH_BYTES_MIN, Math.floor(current / 2));
}

function messageOwnBytes(message: SettlementMessage, dualHistory: boolean): number {
  const copies = dualHistory ? 2 : 1;
  if (message.kind === 'funding') return (1 + copies) * STATEMENT_BYTES.ledger + STATEMENT_BYTES.historyIndex;
  return STATEMENT_BYTES.trade + tradeParties(message) * (copies * STATEMENT_BYTES.tradeHistory + STATEMENT_BYTES.historyIndex);
}

function deadLetterBytes(letter: PlannedDeadLetter): number {
  return STATEMENT_BYTES.deadLetterBase + letter.raw.length + letter.reason.length;
}

export function messageRaw(message: SettlementMessage): string {
  return JSON.stringify(encodeBigints(message));
}

class ChunkBuilder {
  readonly chunk: SettleChunk;
  readonly rows = new Map<BalanceRowKey, BalanceRow>();
  entries = 0;

  constructor(afterSeq: bigint) {
    // The watermark statement is always there.
    this.chunk = { trades: [], funding: [], rows: [], deadLetters: [], lastSeq: afterSeq, statementCount: 1, bytesEstimate: STATEMENT_BYTES.watermark };
  }

  seal(): SettleChunk {
    for (const row of this.rows.values()) this.chunk.rows.push(row);
    return this.chunk;
  }
}

/**
 * Plans the batches of one job. Never throws for a bad message: a message that cannot apply
 * (duplicate trade id, overflow, wrong shard) becomes a dead letter in the chunk where it sits
 * in sequence order, so the watermark passes it and the shard goes on.
 */
export function planSettlement(input: SettlePlanInput): SettlePlan {
  const chunks: SettleChunk[] = [];
  let builder = new ChunkBuilder(input.afterSeq);
  /** Latest value of each row changed by this plan so far (across chunks). */
  const planRows = new Map<BalanceRowKey, BalanceRow>();
  const seenTradeIds = new Map<bigint, bigint>();
  let applied = 0;
  let alreadySettled = 0;
  let deadLettered = 0;

  const lookup = (key: BalanceRowKey, userId: bigint, assetId: number): BalanceRow =>
    planRows.get(key) ?? input.current(key, userId, assetId) ?? emptyRow(userId, assetId);

  const bytesMax = input.batchBytesMax ?? Number.POSITIVE_INFINITY;
  const fits = (extra: number, extraBytes: number): boolean =>
    builder.entries === 0 || (builder.chunk.statementCount + extra <= input.batchStatementsMax && builder.chunk.bytesEstimate + extraBytes <= bytesMax);
  /** A message too large for any batch, even alone with the watermark. */
  const aloneTooLarge = (bytes: number): boolean => STATEMENT_BYTES.watermark + bytes > bytesMax;
  const nextChunk = (): void => {
    const lastSeq = builder.chunk.lastSeq;
    chunks.push(builder.seal());
    builder = new ChunkBuilder(lastSeq);
  };
  const bumpSeq = (seq: bigint | undefined): void => {
    if (seq !== undefined && seq > builder.chunk.lastSeq) builder.chunk.lastSeq = seq;
  };
  const deadLetter = (letter: PlannedDeadLetter): void => {
    let bytes = deadLetterBytes(letter);
    if (aloneTooLarge(bytes)) {
      // Kept all the same, its raw text cut so the dead letter itself fits.
      const room = Math.max(0, bytesMax - STATEMENT_BYTES.watermark - STATEMENT_BYTES.deadLetterBase - letter.reason.length - 64);
      letter = { ...letter, raw: `${letter.raw.slice(0, room)}…(truncated)` };
      bytes = deadLetterBytes(letter);
    }
    if (!fits(1, bytes)) nextChunk();
    builder.chunk.deadLetters.push(letter);
    builder.chunk.statementCount += 1;
    builder.chunk.bytesEstimate += bytes;
    builder.entries += 1;
    bumpSeq(letter.seq);
    deadLettered += 1;
  };

  // Rejected messages without a usable sequence go first; the others take their place in order.
  const rejected = [...(input.rejected ?? [])];
  rejected.sort((a, b) => (a.seq === b.seq ? 0 : a.seq === undefined ? -1 : b.seq === undefined ? 1 : a.seq < b.seq ? -1 : 1));
  let r = 0;
  const flushRejectedUpTo = (seq: bigint | undefined): void => {
    while (r < rejected.length && (seq === undefined || rejected[r]!.seq === undefined || rejected[r]!.seq! < seq)) deadLetter(rejected[r++]!);
  };

  for (const message of input.messages) {
    flushRejectedUpTo(message.seq);
    const refusal = refuse(message, input, seenTradeIds);
    const replayed = refusal === 'already-settled';
    if (replayed) {
      // Its trade row is stored but the watermark is below it: the batch that wrote it may be
      // only partly visible (a LOGGED BATCH is atomic, not isolated; after a crash the batchlog
      // replays it later, at its old timestamp). Skipping it would let this batch overwrite a
      // balance row that lacks its effect, and the late replay would lose to this newer write.
      // So it is applied like any message: row versions make it a no-op where it already is.
      alreadySettled += 1;
    } else if (refusal !== undefined) {
      deadLetter(refusal);
      continue;
    }

    let after: BalanceRow[];
    try {
      after = applyMessage(message, lookup, input.feeAccountUserId);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      deadLetter({ seq: message.seq, code: error.code, reason: `Cannot apply ${message.kind} at seq ${message.seq}: ${error.message}`, field: error.field, raw: messageRaw(message) });
      continue;
    }

    const dual = input.dualHistory === true;
    const ownStatements = message.kind === 'trade' ? tradeRowStatements(message, dual) : fundingRowStatements(dual);
    const ownBytes = messageOwnBytes(message, dual);
    if (aloneTooLarge(ownBytes + after.length * STATEMENT_BYTES.balance)) {
      deadLetter({
        seq: message.seq,
        code: DeadLetterCode.BATCH_TOO_LARGE,
        field: 'batch_bytes_max',
        reason: `Cannot apply ${message.kind} at seq ${message.seq}: its rows (~${ownBytes + after.length * STATEMENT_BYTES.balance} bytes) exceed settler.batch_bytes_max ${bytesMax} on their own`,
        raw: messageRaw(message),
      });
      continue;
    }
    let newRows = 0;
    for (const row of after) if (!builder.rows.has(balanceRowKey(row.userId, row.assetId))) newRows += 1;
    if (!fits(ownStatements + newRows, ownBytes + newRows * STATEMENT_BYTES.balance)) {
      nextChunk();
      newRows = after.length;
    }
    for (const row of after) {
      const key = balanceRowKey(row.userId, row.assetId);
      builder.rows.set(key, row);
      planRows.set(key, row);
    }
    if (message.kind === 'trade') {
      builder.chunk.trades.push(message);
      seenTradeIds.set(message.tradeId, message.seq);
    } else {
      builder.chunk.funding.push(message);
    }
    builder.chunk.statementCount += ownStatements + newRows;
    builder.chunk.bytesEstimate += ownBytes + newRows * STATEMENT_BYTES.balance;
    builder.entries += 1;
    bumpSeq(message.seq);
    if (!replayed) applied += 1;
  }
  flushRejectedUpTo(undefined);
  if (builder.entries > 0 || chunks.length === 0) chunks.push(builder.seal());
  return { chunks, applied, alreadySettled, deadLettered };
}

/** Why a message cannot apply on this shard, 'already-settled', or undefined when it can. */
function refuse(
  message: SettlementMessage,
  input: SettlePlanInput,
  seenTradeIds: ReadonlyMap<bigint, bigint>,
): PlannedDeadLetter | 'already-settled' | undefined {
  const letter = (code: DeadLetterCode, field: string, reason: string): PlannedDeadLetter => ({ seq: message.seq, code, field, reason, raw: messageRaw(message) });
  if (message.shard !== input.shard) {
    return letter(DeadLetterCode.WRONG_SHARD, 'shard', `Cannot apply ${message.kind} at seq ${message.seq}: shard is ${message.shard}, queue shard is ${input.shard}`);
  }
  if (message.kind === 'funding') {
    if (input.market !== undefined) {
      return letter(DeadLetterCode.WRONG_SHARD, 'kind', `Cannot apply funding event at seq ${message.seq}: shard ${input.shard} settles trades only`);
    }
    if (!input.assetIds.has(message.currency)) {
      return letter(DeadLetterCode.UNKNOWN_ASSET, 'currency', `Cannot apply funding event at seq ${message.seq}: currency: unknown asset ${message.currency}`);
    }
    return undefined;
  }
  const market = input.market;
  if (market === undefined) {
    return letter(DeadLetterCode.WRONG_SHARD, 'kind', `Cannot apply trade ${message.tradeId} at seq ${message.seq}: shard ${input.shard} settles funding events only`);
  }
  if (message.baseAsset !== market.baseAsset || message.quoteAsset !== market.quoteAsset) {
    return letter(
      DeadLetterCode.WRONG_SHARD,
      'baseAsset',
      `Cannot apply trade ${message.tradeId} at seq ${message.seq}: baseAsset/quoteAsset ${message.baseAsset}/${message.quoteAsset} are not those of ${market.name} (${market.baseAsset}/${market.quoteAsset})`,
    );
  }
  const inJob = seenTradeIds.get(message.tradeId);
  if (inJob !== undefined) {
    return letter(DeadLetterCode.DUPLICATE_TRADE, 'tradeId', `Duplicate trade: trade_id ${message.tradeId} at seq ${message.seq} repeats the one at seq ${inJob}`);
  }
  const stored = input.settledTradeSeqs.get(message.tradeId);
  if (stored === message.seq) return 'already-settled';
  if (stored !== undefined) {
    return letter(DeadLetterCode.DUPLICATE_TRADE, 'tradeId', `Duplicate trade: trade_id ${message.tradeId} at seq ${message.seq} was already settled at seq ${stored}`);
  }
  return undefined;
}

/** Every balance row the messages touch: what a settler must have loaded before planning. */
export function touchedRowKeys(messages: readonly SettlementMessage[], feeAccountUserId: bigint): Map<BalanceRowKey, { userId: bigint; assetId: number }> {
  const keys = new Map<BalanceRowKey, { userId: bigint; assetId: number }>();
  for (const message of messages) {
    if (message.kind === 'trade') {
      addKey(keys, message.buyerUserId, message.quoteAsset);
      addKey(keys, message.buyerUserId, message.baseAsset);
      addKey(keys, message.sellerUserId, message.baseAsset);
      addKey(keys, message.sellerUserId, message.quoteAsset);
      if (message.buyerFee > 0n) addKey(keys, feeAccountUserId, message.baseAsset);
      if (message.sellerFee > 0n) addKey(keys, feeAccountUserId, message.quoteAsset);
    } else {
      addKey(keys, message.userId, message.currency);
    }
  }
  return keys;
}

function addKey(keys: Map<BalanceRowKey, { userId: bigint; assetId: number }>, userId: bigint, assetId: number): void {
  const key = balanceRowKey(userId, assetId);
  if (!keys.has(key)) keys.set(key, { userId, assetId });
}
