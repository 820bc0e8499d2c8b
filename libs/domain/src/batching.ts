/**
 * Micro-batching of one shard's sequenced messages into settlement jobs: consecutive messages,
 * at most `maxMessages` per job, a partial job cut once its first message waited `maxWaitMs`.
 * Each job records the last sequence of the job cut before it (the chain the settler checks).
 * Pure: time is passed in.
 */
import type { SettlementMessage } from './messages.js';
import { settlementJobId } from './job.js';

export interface ShardBatcherOptions {
  /** Messages per job, at least 1. */
  readonly maxMessages: number;
  /** How long a partial job waits for more messages, ms. */
  readonly maxWaitMs: number;
  /**
   * How long a partial job waits while the shard's settler is busy (a job of the shard waiting
   * or being settled), ms (default maxWaitMs). A job cut then would only queue behind that one,
   * so the wait costs no latency and makes jobs larger exactly when the settler is behind.
   */
  readonly backlogWaitMs?: number;
}

export interface CutJob {
  readonly shard: string;
  readonly jobId: string;
  /** Last sequence of the previous job of this shard; 0 for the first ever. */
  readonly prevLastSeq: bigint;
  readonly firstSeq: bigint;
  readonly lastSeq: bigint;
  readonly messages: SettlementMessage[];
  /** When the job's first message was added, ms (for enqueue latency). */
  readonly firstAddedAtMs: number;
}

export class ShardBatcher {
  private buffer: SettlementMessage[] = [];
  private firstAddedAtMs = 0;
  private lastAdded: bigint;
  private lastCut: bigint;
  private backlogged = false;

  /**
   * @param lastEnqueuedSeq last sequence already in a job of this shard (persisted state)
   */
  constructor(
    readonly shard: string,
    lastEnqueuedSeq: bigint,
    private readonly options: ShardBatcherOptions,
  ) {
    if (!Number.isInteger(options.maxMessages) || options.maxMessages < 1) throw new RangeError(`maxMessages must be a positive integer, got ${options.maxMessages}`);
    if (!(options.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be >= 0, got ${options.maxWaitMs}`);
    this.lastAdded = lastEnqueuedSeq;
    this.lastCut = lastEnqueuedSeq;
  }

  /** Last sequence added (buffered or cut). */
  get lastSeq(): bigint {
    return this.lastAdded;
  }

  /** Last sequence of the last job cut. */
  get lastCutSeq(): bigint {
    return this.lastCut;
  }

  get bufferedCount(): number {
    return this.buffer.length;
  }

  /** Sequence of the oldest buffered message, if any. */
  get firstBufferedSeq(): bigint | undefined {
    return this.buffer[0]?.seq;
  }

  /** Whether the shard's settler is busy (a job waiting or being settled); see backlogWaitMs. */
  setBacklogged(backlogged: boolean): void {
    this.backlogged = backlogged;
  }

  private get waitMs(): number {
    return this.backlogged ? Math.max(this.options.maxWaitMs, this.options.backlogWaitMs ?? 0) : this.options.maxWaitMs;
  }

  /** True when a full job is waiting. */
  get hasFullJob(): boolean {
    return this.buffer.length >= this.options.maxMessages;
  }

  /** When the buffered partial job is due, ms; undefined when nothing is buffered. */
  get dueAtMs(): number | undefined {
    return this.buffer.length === 0 ? undefined : this.firstAddedAtMs + this.waitMs;
  }

  /**
   * Adds the next message of the shard. A sequence at or below the last one added is a
   * duplicate and is not added. Messages must belong to this shard.
   */
  add(message: SettlementMessage, nowMs: number): 'added' | 'duplicate' {
    if (message.shard !== this.shard) throw new RangeError(`message of shard ${message.shard} given to shard ${this.shard}`);
    if (message.seq <= this.lastAdded) return 'duplicate';
    if (this.buffer.length === 0) this.firstAddedAtMs = nowMs;
    this.buffer.push(message);
    this.lastAdded = message.seq;
    return 'added';
  }

  /**
   * Cuts full jobs, then the partial one when it is due (or `force`), at most `maxJobs`.
   * Cut jobs are pushed onto `out` in order; returns how many were cut.
   */
  cut(nowMs: number, force: boolean, maxJobs: number, out: CutJob[]): number {
    const due = nowMs >= this.firstAddedAtMs + this.waitMs;
    const length = this.buffer.length;
    let offset = 0;
    let cut = 0;
    while (cut < maxJobs && offset < length) {
      const remaining = length - offset;
      const full = remaining >= this.options.maxMessages;
      if (!full && !force && !due) break;
      const size = full ? this.options.maxMessages : remaining;
      const messages = this.buffer.slice(offset, offset + size);
      offset += size;
      const firstSeq = messages[0]!.seq;
      const lastSeq = messages[size - 1]!.seq;
      out.push({
        shard: this.shard,
        jobId: settlementJobId(this.shard, firstSeq, lastSeq),
        prevLastSeq: this.lastCut,
        firstSeq,
        lastSeq,
        messages,
        firstAddedAtMs: this.firstAddedAtMs,
      });
      this.lastCut = lastSeq;
      cut += 1;
    }
    // One copy of the rest, not one per job. The rest arrived after the first message; keeping
    // the old time only makes the next partial job due sooner, never later.
    if (offset > 0) this.buffer = offset === length ? [] : this.buffer.slice(offset);
    return cut;
  }
}
