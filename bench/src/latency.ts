import * as hdr from 'hdr-histogram-js';

/** Latency samples in ms, summarised with an HDR histogram (µs resolution, up to 10 min). */
export class LatencyRecorder {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  percentileMs(p: number): number {
    return this.count === 0 ? Number.NaN : this.histogram.getValueAtPercentile(p) / 1000;
  }

  summary(): { count: number; p50Ms: number; p99Ms: number; maxMs: number } {
    return {
      count: this.count,
      p50Ms: round(this.percentileMs(50)),
      p99Ms: round(this.percentileMs(99)),
      maxMs: round(this.count === 0 ? Number.NaN : this.histogram.maxValue / 1000),
    };
  }
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
