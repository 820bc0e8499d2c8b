/**
 * The ingestor's synchronous core, run once per frame: validate, route to a shard, give the
 * message its shard sequence, drop duplicates, hold messages that arrived ahead of a hole, and
 * append released messages to their shard's micro-batch. No I/O and no awaits here: rejected
 * frames and cut jobs are handed to the caller.
 */
import { isUtf8 } from 'node:buffer';
import {
  FUNDING_SHARD,
  SequenceTracker,
  ShardBatcher,
  engineSequence,
  parseWireMessage,
  shardOfRawMessage,
  type CutJob,
  type MarketCatalog,
  type SequenceHole,
  type SequenceRange,
  type SettlementMessage,
} from '@settlement/domain';
import { UNROUTED_SHARD } from '@settlement/scylla';
import type { IngestCounts } from './counters.js';
import { FUNDING_ASSIGNED_FIELD, GLOBAL_STREAM, type IngestState } from './state.js';

export interface PipelineOptions {
  readonly catalog: MarketCatalog;
  /** global: trades' output_sequence is one counter across symbols (gaps found on the whole stream). */
  readonly sequenceScope: 'global' | 'per_symbol';
  readonly batchMessagesMax: number;
  readonly batchWaitMs: number;
  /** Wait for a partial job while its shard's queue already has a job waiting, ms. */
  readonly backlogWaitMs: number;
  readonly reorderWindowMs: number;
  readonly frameBytesMax: number;
  /**
   * Whether the engine numbers funding events (sequence_id > 0): numbered, unnumbered, or auto
   * (fixed by the stream's first event, or by the persisted state). An event of the other kind
   * is dead-lettered: a stream that mixed both could not be ordered.
   */
  readonly fundingNumbering: FundingNumbering;
  /** Persisted position (Redis hash + spool). */
  readonly state: IngestState;
  readonly counts: IngestCounts;
  /** A frame that failed validation: the caller dead-letters it. */
  readonly onRejected: (rejected: RejectedFrame) => void;
  /** A message arrived after its gap was recorded: the caller marks the gap record filled. */
  readonly onGapFilled: (fill: GapFill) => void;
}

export type FundingNumbering = 'auto' | 'numbered' | 'unnumbered';

export interface GapFill {
  /** Stream whose gap it was ("global", a symbol, or "funding"): the gap record's shard. */
  readonly stream: string;
  readonly gap: SequenceRange;
  readonly seq: bigint;
  /** The message's shard. */
  readonly shard: string;
  /** settled: still in order in its shard, enqueued; dead_letter: its shard was already past it. */
  readonly outcome: 'settled' | 'dead_letter';
}

export interface RejectedFrame {
  /** Shard it would have belonged to, or "unrouted". */
  readonly shard: string;
  readonly reason: string;
  readonly field: string | undefined;
  /** UTF-8 text, or "base64:" + the bytes when they are not valid UTF-8. */
  readonly raw: string;
  readonly origin: FrameOrigin;
}

export type FrameOrigin = 'live' | 'replay';

export interface CutResult {
  readonly jobs: CutJob[];
  /** New values of the state hash fields. */
  readonly marks: Record<string, string>;
}

/** The engine sequence of a valid frame; NOT_SEQUENCED for a rejected or unnumbered one. */
export const NOT_SEQUENCED = -1n;

export class IngestPipeline {
  /** Gap-detection streams: "global" (or one per symbol), and "funding". */
  private readonly trackers = new Map<string, SequenceTracker<SettlementMessage>>();
  private globalTracker: SequenceTracker<SettlementMessage> | undefined;
  private readonly batchers = new Map<string, ShardBatcher>();
  private readonly tradeBatchers: ShardBatcher[] = [];
  private readonly released: SettlementMessage[] = [];
  private fundingAssignedSeq = 0n;
  private fundingAssignedDirty = false;
  /** true / false once the funding stream's numbering is known; undefined in auto mode before its first event. */
  private fundingNumbered: boolean | undefined;

  constructor(private readonly options: PipelineOptions) {
    this.globalTracker = this.load(options.state);
  }

  /**
   * Starts over from `state` (after Redis lost the position): every message held or batched is
   * dropped (all are above the new position, so the engine's replay brings them back).
   */
  reset(state: IngestState): void {
    this.trackers.clear();
    this.batchers.clear();
    this.tradeBatchers.length = 0;
    this.fundingAssignedDirty = false;
    this.globalTracker = this.load(state);
  }

  private load(state: IngestState): SequenceTracker<SettlementMessage> | undefined {
    const { options } = this;
    const { catalog } = options;
    const at = (field: string) => state.get(field) ?? 0n;
    let globalTracker: SequenceTracker<SettlementMessage> | undefined;
    const batch = { maxMessages: options.batchMessagesMax, maxWaitMs: options.batchWaitMs, backlogWaitMs: options.backlogWaitMs };
    for (const shard of catalog.shards) {
      const batcher = new ShardBatcher(shard, at(shard), batch);
      this.batchers.set(shard, batcher);
      if (shard !== FUNDING_SHARD) this.tradeBatchers.push(batcher);
    }
    if (options.sequenceScope === 'global') {
      globalTracker = new SequenceTracker(GLOBAL_STREAM, at(GLOBAL_STREAM), options.reorderWindowMs);
      this.trackers.set(GLOBAL_STREAM, globalTracker);
    } else {
      for (const symbol of catalog.markets.keys()) this.trackers.set(symbol, new SequenceTracker(symbol, at(symbol), options.reorderWindowMs));
    }
    this.fundingAssignedSeq = at(FUNDING_ASSIGNED_FIELD) > at(FUNDING_SHARD) ? at(FUNDING_ASSIGNED_FIELD) : at(FUNDING_SHARD);
    this.trackers.set(FUNDING_SHARD, new SequenceTracker(FUNDING_SHARD, this.fundingAssignedSeq, options.reorderWindowMs));
    // An assigned sequence was only ever given to an unnumbered event. (A position without one
    // proves nothing: older versions did not keep the assigned field.)
    this.fundingNumbered =
      options.fundingNumbering === 'numbered' ? true
      : options.fundingNumbering === 'unnumbered' ? false
      : at(FUNDING_ASSIGNED_FIELD) > 0n ? false
      : undefined;
    return globalTracker;
  }

  /**
   * Handles one frame. Returns the engine's sequence of a valid message (so a replay can page
   * on), or NOT_SEQUENCED.
   */
  ingest(frame: Buffer, nowMs: number, origin: FrameOrigin): bigint {
    const counts = this.options.counts;
    counts.received.inc(origin);
    if (frame.length > this.options.frameBytesMax) {
      this.reject(frame.subarray(0, this.options.frameBytesMax), `Invalid message: frame of ${frame.length} bytes exceeds ${this.options.frameBytesMax} (kept truncated)`, '(root)', origin);
      return NOT_SEQUENCED;
    }
    const parsed = parseWireMessage(frame, this.options.catalog);
    if (!parsed.ok) {
      this.reject(frame, parsed.reason, parsed.field, origin);
      return NOT_SEQUENCED;
    }
    const message = parsed.message;
    const tracker = message.kind === 'funding' ? this.trackers.get(FUNDING_SHARD)! : (this.globalTracker ?? this.trackers.get(message.shard)!);
    const engineSeq = engineSequence(message);
    if (message.kind === 'funding') {
      const numbered = engineSeq > 0n;
      if (this.fundingNumbered !== undefined && this.fundingNumbered !== numbered) {
        this.reject(frame, this.mixedNumberingReason(engineSeq), 'sequence_id', origin);
        return NOT_SEQUENCED;
      }
      if (origin === 'live' || numbered) this.fundingNumbered = numbered;
    }
    let seq = engineSeq;
    if (seq === 0n) {
      // An unnumbered event cannot be told apart from a replayed copy: only live ones count.
      if (origin === 'replay') {
        counts.duplicates.inc(`${tracker.stream}:unnumbered-replay`);
        return NOT_SEQUENCED;
      }
      seq = tracker.highestSeq + 1n;
      if (message.kind === 'funding') {
        this.fundingAssignedSeq = seq;
        this.fundingAssignedDirty = true;
      }
    }
    // parseWireMessage returned a fresh object: give it its sequence in place rather than copy
    // 25 fields per message.
    (message as { seq?: bigint }).seq = seq;
    const sequenced = message as SettlementMessage;
    const released = this.released;
    released.length = 0;
    const outcome = tracker.offer(seq, sequenced, nowMs, released);
    if (outcome === 'duplicate') counts.duplicates.inc(tracker.stream);
    else if (outcome === 'released') this.toBatchers(released, nowMs);
    else if (outcome === 'late') this.late(tracker, sequenced, frame, nowMs, origin);
    return engineSeq === 0n ? NOT_SEQUENCED : engineSeq;
  }

  /**
   * A message whose sequence was already recorded as a gap. Its shard takes it if nothing after
   * it was added there yet (with sequence_scope global the gap was on the whole stream, and
   * the message's own shard may not have moved past it); otherwise applying it would break the
   * shard's order, so it is dead-lettered with the reason. Either way the gap record is marked.
   */
  private late(tracker: SequenceTracker<SettlementMessage>, message: SettlementMessage, frame: Buffer, nowMs: number, origin: FrameOrigin): void {
    const gap = tracker.skippedGapOf(message.seq)!;
    const batcher = this.batchers.get(message.shard)!;
    const shardLastSeq = batcher.lastSeq;
    const fill = { stream: tracker.stream, gap, seq: message.seq, shard: message.shard };
    if (batcher.add(message, nowMs) === 'added') {
      this.options.counts.late.inc('settled');
      this.options.onGapFilled({ ...fill, outcome: 'settled' });
      return;
    }
    this.options.counts.late.inc('dead_letter');
    const field = message.kind === 'trade' ? 'output_sequence' : 'sequence_id';
    const reason =
      `Invalid message: ${field} ${message.seq} arrived after its gap ${gap.fromSeq}-${gap.toSeq} of stream ${tracker.stream} was recorded, ` +
      `and shard ${message.shard} had already taken ${shardLastSeq}; applying it now would break the shard's order`;
    this.options.onRejected({ shard: message.shard, reason, field, raw: rawText(frame), origin });
    this.options.onGapFilled({ ...fill, outcome: 'dead_letter' });
  }

  private mixedNumberingReason(engineSeq: bigint): string {
    const how = this.options.fundingNumbering === 'auto' ? 'funding_numbering: auto, fixed by its first event' : `funding_numbering: ${this.options.fundingNumbering}`;
    return engineSeq === 0n
      ? `Invalid message: sequence_id 0 (unnumbered) on the funding stream, which is numbered (${how}); a stream that mixes numbered and unnumbered events cannot be ordered`
      : `Invalid message: sequence_id ${engineSeq} (numbered) on the funding stream, which is unnumbered (${how}); a stream that mixes numbered and unnumbered events cannot be ordered`;
  }

  /** Messages held behind holes. */
  get heldCount(): number {
    let n = 0;
    for (const t of this.trackers.values()) n += t.heldCount;
    return n;
  }

  /** Messages released and waiting in shard batches. */
  get batchedCount(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.bufferedCount;
    return n;
  }

  get hasFullJob(): boolean {
    for (const b of this.batchers.values()) if (b.hasFullJob) return true;
    return false;
  }

  /** Marks a shard's queue as having (or not) a job waiting behind the active one. */
  setBacklogged(shard: string, backlogged: boolean): void {
    this.batchers.get(shard)?.setBacklogged(backlogged);
  }

  /**
   * Earliest time something is due: a partial job, or the end of a reorder window (except on
   * streams `skipStream` excludes, e.g. those waiting for a replay).
   */
  nextDueMs(skipStream?: (stream: string) => boolean): number | undefined {
    let due: number | undefined;
    for (const b of this.batchers.values()) {
      const at = b.dueAtMs;
      if (at !== undefined && (due === undefined || at < due)) due = at;
    }
    for (const [stream, t] of this.trackers) {
      const at = t.holeDeadlineMs;
      if (at !== undefined && (due === undefined || at < due) && skipStream?.(stream) !== true) due = at;
    }
    return due;
  }

  /** Streams whose hole outlived the reorder window. */
  expiredHoles(nowMs: number): { stream: string; hole: SequenceHole }[] {
    const out: { stream: string; hole: SequenceHole }[] = [];
    for (const [stream, tracker] of this.trackers) {
      const hole = tracker.expiredHole(nowMs);
      if (hole !== undefined) out.push({ stream, hole });
    }
    return out;
  }

  hole(stream: string): SequenceHole | undefined {
    return this.trackers.get(stream)?.hole();
  }

  highestSeq(stream: string): bigint {
    return this.trackers.get(stream)?.highestSeq ?? 0n;
  }

  /** Gives up on a stream's current hole; returns the gap to record. */
  skipHole(stream: string, nowMs: number): SequenceRange | undefined {
    const tracker = this.trackers.get(stream);
    if (tracker === undefined) return undefined;
    const released = this.released;
    released.length = 0;
    const gap = tracker.skipHole(nowMs, released);
    this.toBatchers(released, nowMs);
    if (gap !== undefined) this.countGap(stream, gap);
    return gap;
  }

  /** Skips every hole (shutdown); returns the gaps to record. */
  skipAllHoles(nowMs: number): { stream: string; gap: SequenceRange }[] {
    const out: { stream: string; gap: SequenceRange }[] = [];
    for (const stream of this.trackers.keys()) {
      for (let gap = this.skipHole(stream, nowMs); gap !== undefined; gap = this.skipHole(stream, nowMs)) out.push({ stream, gap });
    }
    return out;
  }

  /** Where a replay of each stream would start after a restart: one past the persisted position. */
  replayStarts(): { stream: string; fromSeq: bigint }[] {
    return [...this.trackers].map(([stream, t]) => ({ stream, fromSeq: t.lastSeq + 1n }));
  }

  /**
   * Cuts the jobs that are ready (full, due, or all when `force`), at most `maxJobs`, and the
   * state-hash values that become true once they are written.
   */
  cut(nowMs: number, force: boolean, maxJobs: number): CutResult | undefined {
    const jobs: CutJob[] = [];
    for (const batcher of this.batchers.values()) {
      if (jobs.length >= maxJobs) break;
      batcher.cut(nowMs, force, maxJobs - jobs.length, jobs);
    }
    if (jobs.length === 0 && !this.fundingAssignedDirty) return undefined;
    const marks: Record<string, string> = {};
    for (const job of jobs) marks[job.shard] = job.lastSeq.toString();
    if (this.globalTracker !== undefined) {
      // Every trade sequence at or below this is in a job written with (or before) this one, or
      // was recorded as a gap: the stream's restart point.
      let durable = this.globalTracker.lastSeq;
      for (const b of this.tradeBatchers) {
        const first = b.firstBufferedSeq;
        if (first !== undefined && first - 1n < durable) durable = first - 1n;
      }
      marks[GLOBAL_STREAM] = durable.toString();
    }
    if (this.fundingAssignedDirty) {
      marks[FUNDING_ASSIGNED_FIELD] = this.fundingAssignedSeq.toString();
      this.fundingAssignedDirty = false;
    }
    return { jobs, marks };
  }

  private toBatchers(messages: readonly SettlementMessage[], nowMs: number): void {
    for (const message of messages) {
      const batcher = this.batchers.get(message.shard)!;
      // At or below the shard's last enqueued sequence: already in a job (the settler's
      // watermark would make it a no-op anyway).
      if (batcher.add(message, nowMs) === 'duplicate') this.options.counts.duplicates.inc(message.shard);
    }
  }

  private countGap(stream: string, gap: SequenceRange): void {
    this.options.counts.gaps.inc(stream);
    this.options.counts.gapMessages.inc(stream, Number(gap.toSeq - gap.fromSeq + 1n));
  }

  private reject(frame: Buffer, reason: string, field: string | undefined, origin: FrameOrigin): void {
    this.options.counts.invalid.inc(origin);
    const raw = rawText(frame);
    const shard = (raw.startsWith('base64:') ? undefined : shardOfRawMessage(raw, this.options.catalog)) ?? UNROUTED_SHARD;
    this.options.onRejected({ shard, reason, field, raw, origin });
  }
}

/** UTF-8 text, or "base64:" + the bytes when they are not valid UTF-8. */
function rawText(frame: Buffer): string {
  return isUtf8(frame) ? frame.toString('utf8') : `base64:${frame.toString('base64')}`;
}
