import { describe, expect, it } from 'vitest';
import { escapeXml, formatValue, lineChart } from './svg-chart.js';

describe('lineChart', () => {
  it('draws one polyline per series, scaled to the maximum, with escaped names', () => {
    const svg = lineChart(
      [
        { name: 'btc_usdt', points: [{ t: 0, v: 0 }, { t: 50, v: 5 }, { t: 100, v: 10 }] },
        { name: '<x>', points: [{ t: 100, v: 2 }] },
      ],
      { title: 'settled', unit: 'msg/s', fromMs: 0, toMs: 100, width: 168, height: 158 },
    );
    expect(svg).toContain('data-max="10"');
    // Plot: x 56..156, y 24..124: (0,0) bottom left, (100,10) top right.
    expect(svg).toContain('points="56.0,124.0 106.0,74.0 156.0,24.0"');
    // A single point is a dot.
    expect(svg).toContain('<g data-series="&lt;x&gt;"><circle cx="156.0" cy="104.0"');
    expect(svg).not.toContain('<x>');
  });

  it('says so when there is nothing to draw', () => {
    expect(lineChart([{ name: 'a', points: [] }], { title: 't', unit: 'u', fromMs: 0, toMs: 1 })).toContain('no samples yet');
  });

  it('formats and escapes', () => {
    expect(formatValue(1234.6)).toBe('1,235');
    expect(formatValue(12.34)).toBe('12.3');
    expect(formatValue(0.256)).toBe('0.26');
    expect(escapeXml(`a<b>&"'`)).toBe('a&lt;b&gt;&amp;&quot;&#39;');
  });
});
