import { describe, expect, it } from 'vitest';
import { decodeSettlementJob, encodeSettlementJob, settlementJobId } from './job.js';
import type { SettlementMessage } from './messages.js';

const deposit = (seq: bigint): SettlementMessage => ({ kind: 'funding', shard: 'funding', seq, userId: 2n ** 60n, sequenceId: seq, eventType: 'DEPOSIT', amount: 2n ** 62n, currency: 1, relatedId: 0n, createdAt: 1n });

describe('settlement job codec', () => {
  it('round-trips bigints through JSON exactly', () => {
    const data = JSON.parse(JSON.stringify(encodeSettlementJob('funding', 0n, [deposit(1n), deposit(2n)])));
    const job = decodeSettlementJob(data);
    expect(job.messages[1]).toEqual(deposit(2n));
  });

  it('refuses messages out of order, naming the field', () => {
    const data = JSON.parse(JSON.stringify(encodeSettlementJob('funding', 5n, [deposit(5n)])));
    expect(() => decodeSettlementJob(data)).toThrow('Invalid settlement job: messages.0.seq: 5 is not above 5');
  });

  it('uses job ids BullMQ accepts', () => {
    expect(settlementJobId('btc_usdt', 1n, 50n)).toBe('btc_usdt-1-50');
  });
});
