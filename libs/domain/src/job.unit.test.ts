import { describe, expect, it } from 'vitest';
import { decodeCorrectionJob, decodeSettlementJob, decodeVerifyJob, encodeSettlementJob, encodeVerifyJob, settlementJobId } from './job.js';
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

describe('correction job codec', () => {
  const row = { userId: '18446744073709551615', assetId: 2, availableDelta: '-1', lockedDelta: '0', version: '40', availableBefore: '-9223372036854775808', lockedBefore: '5' };
  const job = (rows: unknown[]) => ({ v: 1, shard: 'btc_usdt', correctionId: 'rc-btc_usdt-0123', reconciliationJobId: 'run-1', rows });

  it('reads the measured row state as bigints, exactly', () => {
    expect(decodeCorrectionJob(job([row])).rows[0]).toEqual({ userId: 2n ** 64n - 1n, assetId: 2, availableDelta: -1n, lockedDelta: 0n, version: 40n, availableBefore: -(2n ** 63n), lockedBefore: 5n });
  });

  it('takes both before-values or neither, naming the missing one', () => {
    const { availableBefore: _a, lockedBefore: _l, ...versionOnly } = row;
    expect(decodeCorrectionJob(job([versionOnly])).rows[0]?.availableBefore).toBeUndefined();
    const { lockedBefore: _, ...half } = row;
    expect(() => decodeCorrectionJob(job([half]))).toThrow('Invalid correction job: rows.0.lockedBefore: is required when the other before-value is given');
    expect(() => decodeCorrectionJob(job([{ ...row, availableBefore: 1 }]))).toThrow(/^Invalid correction job: rows\.0\.availableBefore: /);
  });
});

describe('verify job data', () => {
  it('carries what the requester saw acknowledged, optionally, and names a bad field', () => {
    expect(decodeVerifyJob(encodeVerifyJob('btc_usdt', 2998n))).toEqual({ acknowledgedSeq: 2998n });
    // Jobs added before the field existed.
    expect(decodeVerifyJob({ v: 1, shard: 'btc_usdt' })).toEqual({ acknowledgedSeq: undefined });
    expect(() => decodeVerifyJob({ v: 1, shard: 'btc_usdt', acknowledgedSeq: '-1' })).toThrow(/acknowledgedSeq: must be an unsigned decimal integer string/);
    expect(() => decodeVerifyJob({ v: 2, shard: 'btc_usdt' })).toThrow(/Invalid verify job: v/);
  });
});
