/**
 * Money is integer minor units in `bigint`, never `number`. Cassandra stores it as a signed
 * 64-bit `bigint`, so every result is checked against that range: a value that would not fit
 * is an error, not a silent wrap.
 */
import { DomainError } from './domain-error.js';

export const I64_MIN = -(2n ** 63n);
export const I64_MAX = 2n ** 63n - 1n;
export const U64_MAX = 2n ** 64n - 1n;

export function assertI64(value: bigint, what: string): bigint {
  if (value < I64_MIN || value > I64_MAX) {
    throw new DomainError('AMOUNT_OVERFLOW', `${what} = ${value} does not fit in a signed 64-bit integer`);
  }
  return value;
}

export function checkedAdd(a: bigint, b: bigint, what: string): bigint {
  return assertI64(a + b, what);
}

export function checkedSub(a: bigint, b: bigint, what: string): bigint {
  return assertI64(a - b, what);
}

/** a / b, only when the division is exact. */
export function exactDiv(a: bigint, b: bigint, what: string): bigint {
  if (b <= 0n) throw new DomainError('INVALID_DIVISOR', `${what}: divisor must be positive, got ${b}`);
  if (a % b !== 0n) throw new DomainError('INEXACT_AMOUNT', `${what}: ${a} is not a multiple of ${b}`);
  return a / b;
}

export function pow10(exponent: number): bigint {
  return 10n ** BigInt(exponent);
}
