/**
 * planCorrection applies a delta only to the exact row state it was measured on (issue 18.1):
 * a correction keeps the row's version, so after one correction of a mismatch the row still has
 * the measured version, and only its values tell that a second correction of the same mismatch
 * (sent by another reconciliation run) must not apply.
 */
import { describe, expect, it } from 'vitest';
import { balanceRowKey, type BalanceRow } from './balances.js';
import { planCorrection, type CorrectionDelta } from './correction-plan.js';

const WATERMARK = 90n;

/** Storage of one shard's rows, updated with what each planned correction writes. */
function storage(rows: readonly BalanceRow[]) {
  const byKey = new Map(rows.map((r) => [balanceRowKey(r.userId, r.assetId), r]));
  return {
    get: (key: string) => byKey.get(key),
    apply(deltas: readonly CorrectionDelta[]) {
      const planned = planCorrection(deltas, (key) => byKey.get(key), WATERMARK);
      for (const c of planned) byKey.set(balanceRowKey(c.after.userId, c.after.assetId), c.after);
      return planned;
    },
  };
}

describe('planCorrection of a row state measured twice', () => {
  const truth: BalanceRow = { userId: 7n, assetId: 2, available: 100n, locked: 5n, version: 40n };
  // The row as two reconciliation runs measured it: corrupted by +1, the version untouched.
  const measured: CorrectionDelta = { userId: 7n, assetId: 2, availableDelta: -1n, lockedDelta: 0n, version: 40n, availableBefore: 101n, lockedBefore: 5n };

  it('applies the first correction and skips the second: the row ends at the truth, not 2× off', () => {
    const store = storage([{ ...truth, available: 101n }]);
    expect(store.apply([measured])).toEqual([{ before: { ...truth, available: 101n }, after: truth, recreated: false }]);
    expect(store.apply([measured])).toEqual([]);
    expect(store.get('7/2')).toEqual(truth);
  });

  it('skips a row whose values differ from the measured ones in available or in locked alone', () => {
    expect(storage([{ ...truth, available: 101n, locked: 6n }]).apply([measured])).toEqual([]);
    expect(storage([truth]).apply([measured])).toEqual([]);
  });

  it('still skips a row whose version moved, whatever its values', () => {
    expect(storage([{ ...truth, available: 101n, version: 41n }]).apply([measured])).toEqual([]);
  });

  it('recreates a row measured as missing once: the recreated row no longer looks missing', () => {
    const missing: CorrectionDelta = { userId: 8n, assetId: 1, availableDelta: 3n, lockedDelta: 4n, version: 0n, availableBefore: 0n, lockedBefore: 0n };
    const store = storage([]);
    expect(store.apply([missing])).toHaveLength(1);
    expect(store.apply([missing])).toEqual([]);
    expect(store.get('8/1')).toEqual({ userId: 8n, assetId: 1, available: 3n, locked: 4n, version: WATERMARK });
  });
});
