/**
 * The one text-table renderer: the `settle` CLI's tables and the benchmarks' reports. Columns
 * two spaces apart, a dashed rule under the header; a column whose every cell is a number (or
 * '-') is right-aligned, any other left-aligned; no trailing spaces.
 */
export function renderTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_h, i) => rows.length > 0 && rows.every((r) => /^-?[\d.]+$/.test(r[i] ?? '') || (r[i] ?? '') === '-'));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
