import { describe, expect, it } from 'vitest';
import { decodeSettlerShardHeartbeat, encodeSettlerShardHeartbeat } from './settler-heartbeat.js';

describe('settler heartbeat, per shard (settler → dashboard)', () => {
  it('round-trips through JSON, u64 sequences exactly', () => {
    const state = { lastSeq: 2n ** 64n - 2n, lagMessages: 3, leaseHeld: true, halted: { afterSeq: 2n ** 64n - 2n, throughSeq: 2n ** 64n - 1n } };
    const json = JSON.stringify(encodeSettlerShardHeartbeat(state));
    expect(json).toBe('{"lastSeq":"18446744073709551614","lagMessages":3,"leaseHeld":true,"halted":{"afterSeq":"18446744073709551614","throughSeq":"18446744073709551615"}}');
    expect(decodeSettlerShardHeartbeat(JSON.parse(json))).toEqual({ leaseHeld: true, halted: state.halted });
  });

  it('publishes no halted field for a shard that is not halted', () => {
    expect(encodeSettlerShardHeartbeat({ lastSeq: 0n, lagMessages: null, leaseHeld: false })).toEqual({ lastSeq: '0', lagMessages: null, leaseHeld: false });
  });

  it('loses only the field that is missing or malformed', () => {
    expect(decodeSettlerShardHeartbeat({ lastSeq: '1' })).toEqual({ leaseHeld: false, halted: undefined });
    expect(decodeSettlerShardHeartbeat({ leaseHeld: true, halted: { afterSeq: 9, throughSeq: '20' } })).toEqual({ leaseHeld: true, halted: undefined });
    expect(decodeSettlerShardHeartbeat({ halted: { afterSeq: '-1', throughSeq: '2' } })).toEqual({ leaseHeld: false, halted: undefined });
    expect(decodeSettlerShardHeartbeat('junk')).toBeUndefined();
  });
});
