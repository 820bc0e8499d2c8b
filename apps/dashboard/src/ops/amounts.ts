/** Human-readable amounts beside the exact minor units (which stay the source of truth). */

/** 123456789n with 8 decimals → "1.23456789"; exact, no float. */
export function formatMinorUnits(amount: bigint, decimals: number): string {
  if (decimals === 0) return amount.toString();
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals);
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}

/** JSON.stringify replacer: bigint as a decimal string (JSON has no 64-bit integers). */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
