import { Redis } from 'ioredis';
import type { Simulator } from '@settlement/simulator';
import { LatencyRecorder, round } from './latency.js';

/** A completed job: where its messages are in the simulator's list, and when it moved on. */
interface CompletedJob {
  readonly queueKey: string;
  readonly jobId: string;
  /** Indexes into the simulator's messages. */
  readonly messages: number[];
  /** Redis times (ms) of its "added" and "active" events (NaN if not seen), and of "completed". */
  readonly addedAtMs: number;
  readonly activeAtMs: number;
  readonly completedAtMs: number;
}

/** Where a step's latency went, per message (p50/p99 ms), and how big its jobs were. */
export interface StageBreakdown {
  readonly jobs: number;
  readonly messagesPerJob: number;
  /** Sent by the engine → job added by the ingestor (ZMQ, parsing, the ingestor's batching wait). */
  readonly ingest: { p50Ms: number; p99Ms: number };
  /** Job added → taken by a settler (waiting behind the shard's previous job). */
  readonly queued: { p50Ms: number; p99Ms: number };
  /** Taken → completed (reads, the LOGGED BATCH, completion). */
  readonly settle: { p50Ms: number; p99Ms: number };
  /** The step's latency second by second (by send time), to place its tail. */
  readonly bySecond: readonly SecondLatency[];
}

export interface SecondLatency {
  readonly second: number;
  readonly sent: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

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
  private reader: Redis | undefined;
  private reading: Promise<void> | undefined;
  private closed = false;
  private readonly completedJobs: CompletedJob[] = [];
  /** "added" and "active" event times (ms) of jobs not completed yet, by queue key + job id. */
  private readonly addedAtMs = new Map<string, number>();
  private readonly activeAtMs = new Map<string, number>();
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

  /**
   * Reads the queues' event streams with one blocking XREAD over all of them, keeping the
   * "added", "active" and "completed" events. (BullMQ's QueueEvents takes a connection and a
   * wake-up per queue and parses every event of every kind: load-generator CPU taken from the
   * machine being measured.)
   */
  async listen(queueNames: readonly string[], connection: { url: string }, prefix: string): Promise<void> {
    const reader = new Redis(connection.url, { maxRetriesPerRequest: null });
    this.reader = reader;
    const queueKeys = queueNames.map((name) => `${prefix}:${name}`);
    const streamKeys = queueKeys.map((key) => `${key}:events`);
    // From the newest entry now: "$" in a loop would lose events added between two reads.
    const lastIds = await Promise.all(streamKeys.map(async (key) => (await reader.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'));
    this.reading = (async () => {
      while (!this.closed) {
        let reply: [string, [string, string[]][]][] | null;
        try {
          reply = (await reader.xread('COUNT', 5000, 'BLOCK', 500, 'STREAMS', ...streamKeys, ...lastIds)) as [string, [string, string[]][]][] | null;
        } catch {
          if (this.closed) return;
          // ioredis reconnects; the ids say where to go on.
          await new Promise((resolve) => setTimeout(resolve, 200));
          continue;
        }
        for (const [streamKey, entries] of reply ?? []) {
          const i = streamKeys.indexOf(streamKey);
          for (const [id, fields] of entries) {
            lastIds[i] = id;
            // BullMQ writes "event", <name>, "jobId", <id>, …
            if (fields[2] !== 'jobId') continue;
            const event = fields[1];
            const atMs = Number(id.slice(0, id.indexOf('-')));
            if (event === 'completed') this.onCompleted(queueKeys[i]!, fields[3]!, atMs);
            else if (event === 'added') this.addedAtMs.set(`${queueKeys[i]}:${fields[3]}`, atMs);
            else if (event === 'active') this.activeAtMs.set(`${queueKeys[i]}:${fields[3]}`, atMs);
          }
        }
      }
    })();
  }

  private onCompleted(queueKey: string, jobId: string, atMs: number): void {
    const last = jobId.lastIndexOf('-');
    const mid = jobId.lastIndexOf('-', last - 1);
    if (mid <= 0) return;
    const index = this.shards.get(jobId.slice(0, mid));
    if (index === undefined) return;
    const first = Number(jobId.slice(mid + 1, last));
    const lastSeq = Number(jobId.slice(last + 1));
    const key = `${queueKey}:${jobId}`;
    const job: CompletedJob = { queueKey, jobId, messages: [], addedAtMs: this.addedAtMs.get(key) ?? Number.NaN, activeAtMs: this.activeAtMs.get(key) ?? Number.NaN, completedAtMs: atMs };
    this.addedAtMs.delete(key);
    this.activeAtMs.delete(key);
    this.completedJobs.push(job);
    for (let k = lowerBound(index.seqs, first); k < index.seqs.length && index.seqs[k]! <= lastSeq; k++) {
      const m = index.messageIndex[k]!;
      job.messages.push(m);
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

  /**
   * Splits the latency of messages [from, to) into stages, from the times of each job's
   * "added", "active" and "completed" events (Redis's clock, like the settle time), and gives
   * the per-second profile of the messages' latency, by send time.
   */
  stages(from: number, to: number): StageBreakdown {
    const ingest = new LatencyRecorder();
    const queued = new LatencyRecorder();
    const settle = new LatencyRecorder();
    let jobs = 0;
    /** Jobs whose "added" and "active" events were seen: those the stages are measured on. */
    let measured = 0;
    let messages = 0;
    for (const job of this.completedJobs) {
      if (!job.messages.some((m) => m >= from && m < to)) continue;
      jobs += 1;
      if (!(job.addedAtMs > 0 && job.activeAtMs > 0)) continue;
      measured += 1;
      for (const m of job.messages) {
        const sent = this.sentAtMs[m]!;
        if (m < from || m >= to || Number.isNaN(sent)) continue;
        messages += 1;
        ingest.recordMs(Math.max(0, job.addedAtMs - sent));
        queued.recordMs(Math.max(0, job.activeAtMs - job.addedAtMs));
        settle.recordMs(Math.max(0, job.completedAtMs - job.activeAtMs));
      }
    }
    const pick = (r: LatencyRecorder) => ({ p50Ms: round(r.percentileMs(50)), p99Ms: round(r.percentileMs(99)) });
    return { jobs, messagesPerJob: round(messages / Math.max(1, measured), 1), ingest: pick(ingest), queued: pick(queued), settle: pick(settle), bySecond: this.bySecond(from, to) };
  }

  /** Per second of send time: messages sent, and the p50 / p99 / max of their latency, ms. */
  private bySecond(from: number, to: number): SecondLatency[] {
    const seconds: LatencyRecorder[] = [];
    let startMs = Number.NaN;
    for (let i = from; i < to; i++) {
      const sent = this.sentAtMs[i]!;
      const settled = this.settledAtMs[i]!;
      if (Number.isNaN(sent) || Number.isNaN(settled)) continue;
      if (Number.isNaN(startMs)) startMs = sent;
      const second = Math.floor((sent - startMs) / 1000);
      (seconds[second] ??= new LatencyRecorder()).recordMs(Math.max(0, settled - sent));
    }
    return Array.from(seconds, (r, second) => {
      const { count, p50Ms, p99Ms, maxMs } = (r ?? new LatencyRecorder()).summary();
      return { second, sent: count, p50Ms, p99Ms, maxMs };
    });
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
    this.closed = true;
    this.reader?.disconnect();
    await this.reading?.catch(() => undefined);
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
