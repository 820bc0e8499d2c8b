import { describe, expect, it } from 'vitest';
import { FUNDING_SHARD } from './catalog.js';
import { decodeSettlementJob, encodeSettlementJob } from './job.js';
import type { FundingMessage } from './messages.js';
import { decodeSettleJobLenient, decodeSettlementJobFast } from './settle-job-decode.js';

function deposit(seq: bigint): FundingMessage {
  return { kind: 'funding', shard: FUNDING_SHARD, seq, userId: 1n, sequenceId: seq, eventType: 'DEPOSIT', amount: 5n, currency: 1, relatedId: 0n, createdAt: 0n };
}

describe('decodeSettleJobLenient', () => {
  it('decodes a sound job as decodeSettlementJob does', () => {
    const result = decodeSettleJobLenient(encodeSettlementJob(FUNDING_SHARD, 3n, [deposit(4n), deposit(9n)]), FUNDING_SHARD);
    expect(result).toEqual({ ok: true, shard: FUNDING_SHARD, prevLastSeq: 3n, messages: [deposit(4n), deposit(9n)], rejected: [] });
  });

  it('rejects a job of another shard whole', () => {
    expect(decodeSettleJobLenient(encodeSettlementJob(FUNDING_SHARD, 0n, [deposit(1n)]), 'btc_usdt')).toEqual({
      ok: false,
      reason: 'Invalid settlement job: shard: is funding, queue shard is btc_usdt',
      field: 'shard',
    });
  });

  it('rejects a payload without an envelope whole, naming the field', () => {
    const result = decodeSettleJobLenient({ v: 1, shard: FUNDING_SHARD, prevLastSeq: 'x', messages: [] }, FUNDING_SHARD);
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ field: 'prevLastSeq' });
    expect(decodeSettleJobLenient('garbage', FUNDING_SHARD)).toMatchObject({ ok: false, field: '' });
  });

  it('keeps the valid messages of a job and turns each invalid one into a dead letter naming its field', () => {
    const data = encodeSettlementJob(FUNDING_SHARD, 0n, [deposit(1n), deposit(2n), deposit(3n), deposit(4n)]);
    const messages = data.messages as unknown as Array<Record<string, unknown>>;
    messages[1]!['amount'] = '-2';
    messages[2]!['seq'] = '1'; // not above the message before it
    const result = decodeSettleJobLenient(data, FUNDING_SHARD);
    if (!result.ok) throw new Error(result.reason);
    expect(result.messages.map((m) => m.seq)).toEqual([1n, 4n]);
    expect(result.rejected).toEqual([
      { seq: 2n, code: 'INVALID_MESSAGE', field: 'messages.1.amount', reason: 'Invalid settlement job: messages.1.amount: must be an unsigned decimal integer string', raw: JSON.stringify(messages[1]) },
      { seq: undefined, code: 'INVALID_MESSAGE', field: 'messages.2.seq', reason: 'Invalid settlement job: messages.2.seq: 1 is not above 2', raw: JSON.stringify(messages[2]) },
    ]);
  });
});

describe('decodeSettlementJobFast', () => {
  const trade = {
    kind: 'trade', shard: 'btc_usdt', seq: '7', tradeId: '18446744073709551615', buyOrderId: '1', sellOrderId: '2', buyerUserId: '10', sellerUserId: '11',
    price: '60000', quantity: '100000000', quoteAmount: '60000', baseAsset: 1, quoteAsset: 2, buyerRefund: '0', sellerRefund: '3',
    buyerFee: '10', sellerFee: '0', matchSeq: '1', outputSequence: '7', settledAt: '1700000000000',
    buyerQuoteVersion: '0', buyerBaseVersion: '0', sellerBaseVersion: '0', sellerQuoteVersion: '99999999999999999999',
  };
  const funding = { kind: 'funding', shard: 'btc_usdt', seq: '9', userId: '5', sequenceId: '9', eventType: 'LOCK', amount: '9', currency: 3, relatedId: '0', createdAt: '4' };
  const job = { v: 1, shard: 'btc_usdt', prevLastSeq: '6', messages: [trade, funding] };
  const badValues: unknown[] = [undefined, null, '', '-1', '1.5', 'abc', ' 1', '123456789012345678901', 1, 0, -1, 1.5, 2 ** 53, Number.NaN, Infinity, '1', true, {}, []];

  function zodDecode(data: unknown): unknown {
    try {
      return decodeSettlementJob(data);
    } catch {
      return undefined;
    }
  }

  it('yields what the schema yields for a sound job', () => {
    expect(decodeSettlementJobFast(job)).toEqual(decodeSettlementJob(job));
  });

  it('never accepts a job the schema rejects, whatever field is broken', () => {
    const variants: unknown[] = [];
    for (const key of ['v', 'shard', 'prevLastSeq', 'messages']) for (const bad of badValues) variants.push({ ...job, [key]: bad });
    for (const [i, message] of [trade, funding].entries()) {
      for (const key of [...Object.keys(message), 'extra']) {
        for (const bad of [...badValues, 'trade', 'funding', 'eth_usdt', 'DEPOSIT']) {
          const messages: unknown[] = [trade, funding];
          messages[i] = { ...message, [key]: bad };
          variants.push({ ...job, messages });
        }
      }
    }
    variants.push({ ...job, messages: [] }, { ...job, messages: [funding, trade] }, { ...job, prevLastSeq: '7' }, { ...job, shard: 'eth_usdt' });
    let accepted = 0;
    for (const variant of variants) {
      const fast = decodeSettlementJobFast(variant);
      if (fast === undefined) continue;
      accepted += 1;
      expect(fast).toEqual(zodDecode(variant));
    }
    // Only unknown extra keys (dropped by both) and values equal to valid ones pass.
    expect(accepted).toBeGreaterThan(0);
    expect(variants.length).toBeGreaterThan(700);
  });
});
