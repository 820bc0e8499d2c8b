import { renderTable } from '@settlement/runtime';

/**
 * Prints rows as an aligned text table (the CLI's renderer): numbers as integers or with two
 * decimals, a number that is not finite (a measurement that is missing) as '-'.
 */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  return renderTable(headers, rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c))));
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
