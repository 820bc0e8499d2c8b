import { QueueEvents } from 'bullmq';
import type { Simulator } from '@settlement/simulator';
import { LatencyRecorder } from './latency.js';

interface ShardIndex {
  /** Shard sequences of the simulator's messages, ascending. */
  readonly seqs: number[];
  /** Index of each into the simulator's message list. */
  readonly messageIndex: number[];
}

/**
 * Turns BullMQ "completed" events of the settlement queues into per-message settle times:
 * a job id names its shard and sequence range, the simulator's list says which messages fall in
 * it, and the event's stream id carries Redis's own completion time (ms). Latency is measured
 * from the moment the message was handed to the ZMQ socket.
 */
export class CompletionTracker {
  private readonly shards = new Map<string, ShardIndex>();
  private readonly sentAtMs: Float64Array;
  private readonly settledAtMs: Float64Array;
  private readonly events: QueueEvents[] = [];
  settled = 0;

  constructor(private readonly simulator: Simulator) {
    const messages = simulator.messages;
    this.sentAtMs = new Float64Array(messages.length).fill(Number.NaN);
    this.settledAtMs = new Float64Array(messages.length).fill(Number.NaN);
    messages.forEach((m, i) => {
      let index = this.shards.get(m.shard);
      if (index === undefined) this.shards.set(m.shard, (index = { seqs: [], messageIndex: [] }));
      index.seqs.push(Number(m.seq));
      index.messageIndex.push(i);
    });
  }

  markSent(messageIndex: number, atMs: number): void {
    this.sentAtMs[messageIndex] = atMs;
  }

  async listen(queueNames: readonly string[], connection: { url: string }, prefix: string): Promise<void> {
    for (const name of queueNames) {
      const events = new QueueEvents(name, { connection: { url: connection.url }, prefix, autorun: true });
      events.on('completed', ({ jobId }, id) => this.onCompleted(jobId, Number(id.split('-')[0])));
      await events.waitUntilReady();
      this.events.push(events);
    }
  }

  private onCompleted(jobId: string, atMs: number): void {
    const last = jobId.lastIndexOf('-');
    const mid = jobId.lastIndexOf('-', last - 1);
    if (mid <= 0) return;
    const index = this.shards.get(jobId.slice(0, mid));
    if (index === undefined) return;
    const first = Number(jobId.slice(mid + 1, last));
    const lastSeq = Number(jobId.slice(last + 1));
    for (let k = lowerBound(index.seqs, first); k < index.seqs.length && index.seqs[k]! <= lastSeq; k++) {
      const m = index.messageIndex[k]!;
      if (Number.isNaN(this.settledAtMs[m]!)) {
        this.settledAtMs[m] = atMs;
        this.settled += 1;
      }
    }
  }

  /** Latencies of messages [from, to) (by send order). */
  latency(from: number, to: number): LatencyRecorder {
    const recorder = new LatencyRecorder();
    for (let i = from; i < to; i++) {
      const sent = this.sentAtMs[i]!;
      const settled = this.settledAtMs[i]!;
      if (!Number.isNaN(sent) && !Number.isNaN(settled)) recorder.recordMs(Math.max(0, settled - sent));
    }
    return recorder;
  }

  /** Messages settled with a settle time in [fromMs, toMs). */
  settledBetween(fromMs: number, toMs: number): number {
    let n = 0;
    for (const t of this.settledAtMs) if (t >= fromMs && t < toMs) n += 1;
    return n;
  }

  unsettledBefore(count: number): number {
    let n = 0;
    for (let i = 0; i < count; i++) if (Number.isNaN(this.settledAtMs[i]!)) n += 1;
    return n;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.events.map((e) => e.close()));
  }
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
