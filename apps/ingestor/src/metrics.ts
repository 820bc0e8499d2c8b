/**
 * The ingestor's prom-client metrics. The hot path bumps plain counters (counters.ts); sync()
 * moves them here on each flush and before each heartbeat.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IngestCounts, LabeledCounts } from './counters.js';

export class IngestorMetrics {
  readonly registry = new Registry();
  private readonly received = new Counter({ name: 'ingestor_messages_received_total', help: 'Frames received, by origin (live, replay)', labelNames: ['origin'], registers: [this.registry] });
  private readonly invalid = new Counter({ name: 'ingestor_messages_invalid_total', help: 'Frames rejected by validation and dead-lettered, by origin', labelNames: ['origin'], registers: [this.registry] });
  private readonly enqueued = new Counter({ name: 'ingestor_messages_enqueued_total', help: 'Messages written to Redis or the spool, by shard', labelNames: ['shard'], registers: [this.registry] });
  private readonly duplicates = new Counter({ name: 'ingestor_duplicates_total', help: 'Messages dropped as duplicates, by stream or shard', labelNames: ['stream'], registers: [this.registry] });
  private readonly gaps = new Counter({ name: 'ingestor_sequence_gaps_total', help: 'Sequence gaps recorded, by stream', labelNames: ['stream'], registers: [this.registry] });
  private readonly gapMessages = new Counter({ name: 'ingestor_sequence_gap_messages_total', help: 'Sequences missing in recorded gaps, by stream', labelNames: ['stream'], registers: [this.registry] });
  private readonly replayed = new Counter({ name: 'ingestor_replay_requests_total', help: 'Replay requests, by outcome', labelNames: ['outcome'], registers: [this.registry] });
  private readonly deadLetters = new Counter({ name: 'ingestor_dead_letters_total', help: 'Dead letters, by where they were kept', labelNames: ['sink'], registers: [this.registry] });
  private readonly late = new Counter({ name: 'ingestor_late_after_gap_total', help: 'Messages that arrived after their gap was recorded, by outcome (settled, dead_letter)', labelNames: ['outcome'], registers: [this.registry] });
  private readonly positionLost = new Counter({ name: 'ingestor_position_lost_total', help: 'Times the position in Redis went back (Redis lost writes), by outcome (recovered, halted)', labelNames: ['outcome'], registers: [this.registry] });
  /** 1 while the ingestor is halted because Redis lost a range it cannot re-send (no replay endpoint). */
  readonly halted = new Gauge({ name: 'ingestor_halted', help: '1 while writing is halted: Redis lost a range and no replay endpoint can re-send it', registers: [this.registry] });
  readonly spoolDepth = new Gauge({ name: 'ingestor_spool_depth_units', help: 'Enqueue units in the spool file, not yet in Redis', registers: [this.registry] });
  readonly spoolBytes = new Gauge({ name: 'ingestor_spool_bytes', help: 'Size of the spool file', registers: [this.registry] });
  readonly buffered = new Gauge({ name: 'ingestor_buffered_messages', help: 'Messages held in memory (held behind holes, batching, being written)', registers: [this.registry] });
  readonly enqueueLatency = new Histogram({
    name: 'ingestor_enqueue_latency_seconds',
    help: 'From the first message of a job being received to Redis confirming the job',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(private readonly counts: IngestCounts) {}

  sync(): void {
    move(this.counts.received, this.received, 'origin');
    move(this.counts.invalid, this.invalid, 'origin');
    move(this.counts.enqueued, this.enqueued, 'shard');
    move(this.counts.duplicates, this.duplicates, 'stream');
    move(this.counts.gaps, this.gaps, 'stream');
    move(this.counts.gapMessages, this.gapMessages, 'stream');
    move(this.counts.replayed, this.replayed, 'outcome');
    move(this.counts.deadLetters, this.deadLetters, 'sink');
    move(this.counts.late, this.late, 'outcome');
    move(this.counts.positionLost, this.positionLost, 'outcome');
  }
}

function move(from: LabeledCounts, to: Counter, label: string): void {
  for (const [value, n] of from.take()) to.inc({ [label]: value }, n);
}
