import { describe, expect, it } from 'vitest';
import { bigintReplacer, formatMinorUnits } from './amounts.js';

describe('formatMinorUnits', () => {
  it('places the decimal point exactly, padding small amounts', () => {
    expect(formatMinorUnits(123456789n, 8)).toBe('1.23456789');
    expect(formatMinorUnits(5n, 6)).toBe('0.000005');
    expect(formatMinorUnits(0n, 2)).toBe('0.00');
    expect(formatMinorUnits(-150n, 2)).toBe('-1.50');
    expect(formatMinorUnits(42n, 0)).toBe('42');
  });

  it('keeps amounts beyond 2^53 exact', () => {
    expect(formatMinorUnits(9_223_372_036_854_775_807n, 8)).toBe('92233720368.54775807');
  });
});

describe('bigintReplacer', () => {
  it('writes bigints as decimal strings', () => {
    expect(JSON.stringify({ a: 2n ** 64n - 1n, b: 1 }, bigintReplacer)).toBe('{"a":"18446744073709551615","b":1}');
  });
});
