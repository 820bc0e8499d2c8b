/**
 * A small SVG line chart (throughput and p99 latency against offered rate), written without a
 * charting dependency because it is two polylines and their axes.
 */
export interface ChartPoint {
  readonly offeredPerS: number;
  readonly settledPerS: number;
  readonly p99Ms: number;
}

export function renderChart(points: readonly ChartPoint[], rawCeilingPerS: number, title: string): string {
  const width = 760;
  const height = 420;
  const pad = { left: 70, right: 70, top: 40, bottom: 50 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const xMax = Math.max(...points.map((p) => p.offeredPerS), rawCeilingPerS) * 1.05 || 1;
  const yMax = Math.max(...points.map((p) => p.settledPerS), rawCeilingPerS) * 1.1 || 1;
  const latMax = Math.max(...points.map((p) => p.p99Ms), 50) * 1.1;
  const x = (v: number) => pad.left + (v / xMax) * plotW;
  const y = (v: number) => pad.top + plotH - (v / yMax) * plotH;
  const yLat = (v: number) => pad.top + plotH - (v / latMax) * plotH;
  const line = (pts: Array<[number, number]>) => pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ');
  const ticks = (max: number, n: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<line x1="${pad.left}" y1="${pad.top + plotH}" x2="${pad.left + plotW}" y2="${pad.top + plotH}" stroke="#333"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${pad.top + plotH}" stroke="#333"/>`,
    `<line x1="${pad.left + plotW}" y1="${pad.top}" x2="${pad.left + plotW}" y2="${pad.top + plotH}" stroke="#c33"/>`,
  ];
  for (const t of ticks(xMax, 5)) {
    parts.push(`<text x="${x(t)}" y="${pad.top + plotH + 18}" text-anchor="middle">${Math.round(t)}</text>`);
  }
  for (const t of ticks(yMax, 5)) {
    parts.push(`<text x="${pad.left - 6}" y="${y(t) + 4}" text-anchor="end">${Math.round(t)}</text>`);
    parts.push(`<line x1="${pad.left}" y1="${y(t)}" x2="${pad.left + plotW}" y2="${y(t)}" stroke="#eee"/>`);
  }
  for (const t of ticks(latMax, 5)) {
    parts.push(`<text x="${pad.left + plotW + 6}" y="${yLat(t) + 4}" fill="#c33">${t.toFixed(0)}</text>`);
  }
  parts.push(
    `<text x="${pad.left + plotW / 2}" y="${height - 10}" text-anchor="middle">offered rate (messages/s)</text>`,
    `<text transform="translate(16 ${pad.top + plotH / 2}) rotate(-90)" text-anchor="middle">settled messages/s</text>`,
    `<text transform="translate(${width - 12} ${pad.top + plotH / 2}) rotate(90)" text-anchor="middle" fill="#c33">p99 latency (ms)</text>`,
    `<line x1="${pad.left}" y1="${y(rawCeilingPerS)}" x2="${pad.left + plotW}" y2="${y(rawCeilingPerS)}" stroke="#36c" stroke-dasharray="6 4"/>`,
    `<text x="${pad.left + 6}" y="${y(rawCeilingPerS) - 6}" fill="#36c">raw LOGGED BATCH ceiling ${Math.round(rawCeilingPerS)}/s</text>`,
    `<polyline fill="none" stroke="#222" stroke-width="2" points="${line(points.map((p) => [x(p.offeredPerS), y(p.settledPerS)]))}"/>`,
    `<polyline fill="none" stroke="#c33" stroke-width="2" stroke-dasharray="3 3" points="${line(points.map((p) => [x(p.offeredPerS), yLat(p.p99Ms)]))}"/>`,
  );
  for (const p of points) {
    parts.push(`<circle cx="${x(p.offeredPerS)}" cy="${y(p.settledPerS)}" r="3.5" fill="#222"/>`);
    parts.push(`<circle cx="${x(p.offeredPerS)}" cy="${yLat(p.p99Ms)}" r="3" fill="#c33"/>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
