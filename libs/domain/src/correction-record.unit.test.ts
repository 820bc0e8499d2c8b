import { describe, expect, it } from 'vitest';
import { decodeCorrectedRows, encodeCorrectedRows } from './correction-record.js';
import type { CorrectedRow } from './correction-plan.js';

const rows: CorrectedRow[] = [
  {
    before: { userId: 9_223_372_036_854_775_807n, assetId: 2, available: -5n, locked: 0n, version: 18_446_744_073_709_551_615n },
    after: { userId: 9_223_372_036_854_775_807n, assetId: 2, available: 95n, locked: 0n, version: 18_446_744_073_709_551_615n },
    recreated: false,
  },
  {
    before: { userId: 7n, assetId: 1, available: 0n, locked: 0n, version: 0n },
    after: { userId: 7n, assetId: 1, available: 10n, locked: 3n, version: 42n },
    recreated: true,
  },
];

describe('correction record (balance_corrections.rows)', () => {
  it('round-trips rows with 64-bit values exactly', () => {
    expect(decodeCorrectedRows(encodeCorrectedRows(rows))).toEqual(rows);
  });

  it('writes the text records already stored hold', () => {
    expect(encodeCorrectedRows(rows.slice(1))).toBe(
      '[{"userId":"7","assetId":1,"recreated":true,"before":{"available":"0","locked":"0","version":"0"},"after":{"available":"10","locked":"3","version":"42"}}]',
    );
  });

  it('names the field of a bad record', () => {
    const bad = encodeCorrectedRows(rows).replace('"locked":"3"', '"locked":3');
    expect(() => decodeCorrectedRows(bad)).toThrow('Invalid correction record: 1.after.locked:');
    expect(() => decodeCorrectedRows('[{"userId":"-1"}]')).toThrow('Invalid correction record: 0.userId: must be an unsigned decimal integer string');
    expect(() => decodeCorrectedRows('nope')).toThrow('Invalid correction record: (root): not JSON');
  });
});
