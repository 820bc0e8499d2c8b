/**
 * Decoding a settlement job for the settler, which must never fail a job: a job whose envelope
 * is sound but whose messages are partly invalid keeps its valid messages, and each invalid one
 * becomes a dead letter whose reason names the field. Only a job without a usable envelope
 * (shard, prevLastSeq, messages) is rejected as a whole.
 */
import { DomainError } from './domain-error.js';
import { decodeSettlementJob, type SettlementJob } from './job.js';
import type { FundingEventType, SettlementMessage } from './messages.js';
import { DeadLetterCode, type PlannedDeadLetter } from './settle-plan.js';

export type SettleJobDecode =
  | {
      readonly ok: true;
      readonly shard: string;
      readonly prevLastSeq: bigint;
      /** Valid messages, strictly increasing in seq. */
      readonly messages: SettlementMessage[];
      /** Invalid messages, as dead letters. */
      readonly rejected: PlannedDeadLetter[];
    }
  | { readonly ok: false; readonly reason: string; readonly field: string | undefined };

const UNSIGNED = /^\d{1,20}$/;

/** Decodes the data of a 'settle' job taken from the queue of `queueShard`. Never throws. */
export function decodeSettleJobLenient(data: unknown, queueShard: string): SettleJobDecode {
  // The hot path: a sound job is checked by hand (zod per field costs more than the rest of
  // the settler's own work). Anything the fast check does not accept goes through zod, which
  // then either accepts it too or names the field.
  const fast = decodeSettlementJobFast(data);
  if (fast !== undefined && fast.shard === queueShard) {
    return { ok: true, shard: fast.shard, prevLastSeq: fast.prevLastSeq, messages: fast.messages, rejected: [] };
  }
  let strictError: DomainError;
  try {
    const job = decodeSettlementJob(data);
    if (job.shard !== queueShard) {
      return { ok: false, reason: `Invalid settlement job: shard: is ${job.shard}, queue shard is ${queueShard}`, field: 'shard' };
    }
    return { ok: true, shard: job.shard, prevLastSeq: job.prevLastSeq, messages: job.messages, rejected: [] };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    strictError = error;
  }

  const envelope = data as { v?: unknown; shard?: unknown; prevLastSeq?: unknown; messages?: unknown } | null;
  const envelopeSound =
    typeof envelope === 'object' &&
    envelope !== null &&
    envelope.v === 1 &&
    envelope.shard === queueShard &&
    typeof envelope.prevLastSeq === 'string' &&
    UNSIGNED.test(envelope.prevLastSeq) &&
    Array.isArray(envelope.messages) &&
    envelope.messages.length > 0 &&
    envelope.messages.length <= 10_000;
  if (!envelopeSound) {
    const shardMismatch = typeof envelope === 'object' && envelope !== null && typeof envelope.shard === 'string' && envelope.shard !== queueShard;
    return shardMismatch
      ? { ok: false, reason: `Invalid settlement job: shard: is ${String(envelope.shard)}, queue shard is ${queueShard}`, field: 'shard' }
      : { ok: false, reason: strictError.message, field: strictError.field };
  }

  const prevLastSeq = BigInt(envelope.prevLastSeq as string);
  const messages: SettlementMessage[] = [];
  const rejected: PlannedDeadLetter[] = [];
  let previous = prevLastSeq;
  (envelope.messages as unknown[]).forEach((raw, i) => {
    const seq = usableSeq(raw);
    const text = safeJson(raw);
    try {
      const [message] = decodeSettlementJob({ v: 1, shard: queueShard, prevLastSeq: '0', messages: [raw] }).messages;
      if (message!.seq <= previous) {
        rejected.push({ seq: undefined, code: DeadLetterCode.INVALID_MESSAGE, field: `messages.${i}.seq`, reason: `Invalid settlement job: messages.${i}.seq: ${message!.seq} is not above ${previous}`, raw: text });
        return;
      }
      messages.push(message!);
      previous = message!.seq;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const reason = error.message.replaceAll('messages.0.', `messages.${i}.`);
      const field = error.field?.replace(/^messages\.0\./, `messages.${i}.`);
      // An invalid message's seq still counts when it is in order: the chain of jobs says the
      // shard went through it, and its dead letter records it.
      const inOrder = seq !== undefined && seq > previous;
      rejected.push({ seq: inOrder ? seq : undefined, code: DeadLetterCode.INVALID_MESSAGE, field, reason, raw: text });
      if (inOrder) previous = seq;
    }
  });
  return { ok: true, shard: queueShard, prevLastSeq, messages, rejected };
}

function usableSeq(raw: unknown): bigint | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const seq = (raw as { seq?: unknown }).seq;
  return typeof seq === 'string' && UNSIGNED.test(seq) ? BigInt(seq) : undefined;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

const SHARD_NAME = /^[a-z][a-z0-9_]{0,40}$/;
const EVENT_TYPES: ReadonlySet<unknown> = new Set(['DEPOSIT', 'WITHDRAWAL', 'LOCK', 'UNLOCK']);

/**
 * The same rules as settlementJobSchema (job.ts), checked by hand for speed. Returns undefined
 * for anything it does not accept; it never accepts what the schema rejects (a unit test
 * compares both on valid and broken jobs), and then yields the same value.
 */
export function decodeSettlementJobFast(data: unknown): SettlementJob | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const job = data as Record<string, unknown>;
  const shard = job['shard'];
  const prev = job['prevLastSeq'];
  const raw = job['messages'];
  if (job['v'] !== 1 || typeof shard !== 'string' || !SHARD_NAME.test(shard) || typeof prev !== 'string' || !UNSIGNED.test(prev)) return undefined;
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > 10_000) return undefined;
  const prevLastSeq = BigInt(prev);
  const messages: SettlementMessage[] = new Array(raw.length);
  let previous = prevLastSeq;
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i] as Record<string, unknown> | null;
    if (typeof m !== 'object' || m === null || m['shard'] !== shard) return undefined;
    const message = m['kind'] === 'trade' ? fastTrade(m, shard) : m['kind'] === 'funding' ? fastFunding(m, shard) : undefined;
    if (message === undefined || message.seq <= previous) return undefined;
    previous = message.seq;
    messages[i] = message;
  }
  return { v: 1, shard, prevLastSeq, messages };
}

/** An unsigned decimal string as bigint; NaN-like sentinel -1n when invalid. */
function u(value: unknown): bigint {
  return typeof value === 'string' && UNSIGNED.test(value) ? BigInt(value) : -1n;
}

function assetId(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : -1;
}

function fastTrade(m: Record<string, unknown>, shard: string): SettlementMessage | undefined {
  const t = {
    kind: 'trade' as const,
    shard,
    seq: u(m['seq']),
    tradeId: u(m['tradeId']),
    buyOrderId: u(m['buyOrderId']),
    sellOrderId: u(m['sellOrderId']),
    buyerUserId: u(m['buyerUserId']),
    sellerUserId: u(m['sellerUserId']),
    price: u(m['price']),
    quantity: u(m['quantity']),
    quoteAmount: u(m['quoteAmount']),
    baseAsset: assetId(m['baseAsset']),
    quoteAsset: assetId(m['quoteAsset']),
    buyerRefund: u(m['buyerRefund']),
    sellerRefund: u(m['sellerRefund']),
    buyerFee: u(m['buyerFee']),
    sellerFee: u(m['sellerFee']),
    matchSeq: u(m['matchSeq']),
    outputSequence: u(m['outputSequence']),
    settledAt: u(m['settledAt']),
    buyerQuoteVersion: u(m['buyerQuoteVersion']),
    buyerBaseVersion: u(m['buyerBaseVersion']),
    sellerBaseVersion: u(m['sellerBaseVersion']),
    sellerQuoteVersion: u(m['sellerQuoteVersion']),
  };
  if (t.baseAsset < 0 || t.quoteAsset < 0) return undefined;
  if (
    t.seq < 0n || t.tradeId < 0n || t.buyOrderId < 0n || t.sellOrderId < 0n || t.buyerUserId < 0n || t.sellerUserId < 0n ||
    t.price < 0n || t.quantity < 0n || t.quoteAmount < 0n || t.buyerRefund < 0n || t.sellerRefund < 0n || t.buyerFee < 0n ||
    t.sellerFee < 0n || t.matchSeq < 0n || t.outputSequence < 0n || t.settledAt < 0n || t.buyerQuoteVersion < 0n ||
    t.buyerBaseVersion < 0n || t.sellerBaseVersion < 0n || t.sellerQuoteVersion < 0n
  ) {
    return undefined;
  }
  return t;
}

function fastFunding(m: Record<string, unknown>, shard: string): SettlementMessage | undefined {
  const eventType = m['eventType'];
  if (!EVENT_TYPES.has(eventType)) return undefined;
  const e = {
    kind: 'funding' as const,
    shard,
    seq: u(m['seq']),
    userId: u(m['userId']),
    sequenceId: u(m['sequenceId']),
    eventType: eventType as FundingEventType,
    amount: u(m['amount']),
    currency: assetId(m['currency']),
    relatedId: u(m['relatedId']),
    createdAt: u(m['createdAt']),
  };
  if (e.currency < 0 || e.seq < 0n || e.userId < 0n || e.sequenceId < 0n || e.amount < 0n || e.relatedId < 0n || e.createdAt < 0n) return undefined;
  return e;
}
