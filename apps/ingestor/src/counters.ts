/**
 * Plain counters the hot path bumps (no prom-client label lookups per message); metrics.ts moves
 * them into prom-client on each flush and heartbeat.
 */
export class LabeledCounts {
  private readonly pending = new Map<string, number>();
  private readonly totals = new Map<string, number>();

  inc(label: string, by = 1): void {
    this.pending.set(label, (this.pending.get(label) ?? 0) + by);
    this.totals.set(label, (this.totals.get(label) ?? 0) + by);
  }

  /** Counts since the last call, then zero. */
  take(): Map<string, number> {
    const out = new Map(this.pending);
    this.pending.clear();
    return out;
  }

  total(label: string): number {
    return this.totals.get(label) ?? 0;
  }

  sum(): number {
    let sum = 0;
    for (const v of this.totals.values()) sum += v;
    return sum;
  }

  entries(): [string, number][] {
    return [...this.totals];
  }
}

export class IngestCounts {
  readonly received = new LabeledCounts();
  readonly invalid = new LabeledCounts();
  readonly duplicates = new LabeledCounts();
  readonly gaps = new LabeledCounts();
  readonly gapMessages = new LabeledCounts();
  readonly replayed = new LabeledCounts();
  readonly enqueued = new LabeledCounts();
  readonly deadLetters = new LabeledCounts();
  /** Messages that arrived after their gap was recorded, by outcome (settled / dead_letter). */
  readonly late = new LabeledCounts();
  /** Times the position in Redis was found gone back, and how each ended (recovered / halted). */
  readonly positionLost = new LabeledCounts();
}
