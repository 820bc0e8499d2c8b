/**
 * A small line chart as inline SVG, without a dependency: one polyline per series over a time
 * axis, a zero-based value axis labelled with its maximum, and a legend. Server-rendered, so the
 * overview page needs no script to show it.
 */
export interface ChartSeries {
  readonly name: string;
  readonly points: ReadonlyArray<{ readonly t: number; readonly v: number }>;
}

export interface ChartOptions {
  readonly title: string;
  /** Unit shown after the maximum, e.g. "msg/s". */
  readonly unit: string;
  readonly fromMs: number;
  readonly toMs: number;
  /** Pixels. Defaults 560 × 180. */
  readonly width?: number;
  readonly height?: number;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
const MARGIN = { left: 56, right: 12, top: 24, bottom: 34 } as const;

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** "1 234", "12.5", "0.25": short labels for the value axis. */
export function formatValue(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

export function lineChart(series: readonly ChartSeries[], options: ChartOptions): string {
  const width = options.width ?? 560;
  const height = options.height ?? 180;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const span = Math.max(1, options.toMs - options.fromMs);
  const max = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v)));
  const top = max > 0 ? max : 1;
  const x = (t: number) => MARGIN.left + ((Math.min(Math.max(t, options.fromMs), options.toMs) - options.fromMs) / span) * plotW;
  const y = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    if (s.points.length === 0) return '';
    const d = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
    const shape = s.points.length === 1 ? `<circle cx="${x(s.points[0]!.t).toFixed(1)}" cy="${y(s.points[0]!.v).toFixed(1)}" r="2.5" fill="${color}"/>` : `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${d}"/>`;
    return `<g data-series="${escapeXml(s.name)}">${shape}</g>`;
  });
  const legend = series
    .map((s, i) => {
      const lx = MARGIN.left + i * 110;
      return `<rect x="${lx}" y="${height - 12}" width="10" height="3" fill="${COLORS[i % COLORS.length]}"/><text x="${lx + 14}" y="${height - 8}" font-size="10">${escapeXml(s.name)}</text>`;
    })
    .join('');
  const empty = series.every((s) => s.points.length === 0) ? `<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH / 2}" font-size="11" text-anchor="middle" fill="#6b7280">no samples yet</text>` : '';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}" data-max="${max}">`,
    `<text x="${MARGIN.left}" y="14" font-size="12" font-weight="600">${escapeXml(options.title)}</text>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="#9ca3af"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="#9ca3af"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top}" stroke="#e5e7eb" stroke-dasharray="3,3"/>`,
    `<text x="${MARGIN.left - 4}" y="${MARGIN.top + 4}" font-size="10" text-anchor="end">${escapeXml(formatValue(max))}</text>`,
    `<text x="${MARGIN.left - 4}" y="${MARGIN.top + plotH}" font-size="10" text-anchor="end">0</text>`,
    `<text x="${MARGIN.left - 4}" y="${MARGIN.top + plotH / 2}" font-size="9" text-anchor="end" fill="#6b7280">${escapeXml(options.unit)}</text>`,
    `<text x="${MARGIN.left}" y="${MARGIN.top + plotH + 12}" font-size="10">${clock(options.fromMs)}</text>`,
    `<text x="${MARGIN.left + plotW}" y="${MARGIN.top + plotH + 12}" font-size="10" text-anchor="end">${clock(options.toMs)} UTC</text>`,
    ...lines,
    empty,
    legend,
    '</svg>',
  ].join('');
}
