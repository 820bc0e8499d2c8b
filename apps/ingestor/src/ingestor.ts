/**
 * The ingestor: ZMQ frames → pipeline (validate, sequence, batch) → flusher (Redis or spool).
 * This class owns the timing: when to flush, when a reorder window has run out, when to ask the
 * engine's replay endpoint, and the order of shutdown.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEAD_LETTER_QUEUE, type SequenceHole, type SequenceRange } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { CassandraWriter } from './cassandra-writer.js';
import type { IngestCounts } from './counters.js';
import type { UnitJob } from './enqueue-unit.js';
import type { Flusher } from './flusher.js';
import type { GapFillWriter } from './gap-fill-writer.js';
import type { JobWriter } from './job-writer.js';
import type { IngestorMetrics } from './metrics.js';
import { NOT_SEQUENCED, type GapFill, type IngestPipeline, type RejectedFrame } from './pipeline.js';
import { PositionLostError } from './position-lost-error.js';
import type { ReceiverGate } from './receiver.js';
import type { ReplayClient } from './replay-client.js';
import { rebuildState, stateFields } from './state.js';

export const DEAD_LETTER_JOB_NAME = 'dead-letter';

/**
 * A rejected frame's dead-letter job id, from its bytes: writing it twice (spool drain after an
 * ambiguous failure, the engine replaying it) keeps one job. Identical bad frames share a job;
 * the dead_letters table still gets a row for each one received.
 */
export function deadLetterJobId(raw: string): string {
  return `ingestor-${createHash('sha256').update(raw).digest('hex').slice(0, 32)}`;
}

/** Whether a dead-letter job is already stored (Redis), to keep a replayed bad frame once. */
export type DeadLetterLookup = (jobId: string) => Promise<boolean>;

/** See capacity(). */
const CAPACITY_CHECK_FRAMES = 64;

export interface IngestorLimits {
  /** Messages held in memory before reading stops (batch.buffer_messages_max). */
  readonly bufferMessagesMax: number;
  /** Jobs per MULTI (ingestor.flush_jobs_max). */
  readonly flushJobsMax: number;
  /** min(batch.max_wait_ms, ingestor.reorder_window_ms): the soonest a new message can be due. */
  readonly minDueDelayMs: number;
  /** Longest a shutdown flush may take, ms. */
  readonly shutdownFlushMs: number;
}

/** What a recovery from a Redis that lost the position needs (see recover()). */
export interface PositionRecovery {
  readonly writer: JobWriter;
  /** Shard → last settled sequence (Cassandra shard_watermarks). */
  readonly watermarks: () => Promise<ReadonlyMap<string, bigint>>;
  readonly tradeShards: readonly string[];
  readonly sequenceScope: 'global' | 'per_symbol';
  /** Wait between attempts while Redis or Cassandra do not answer, ms. */
  readonly retryIntervalMs: number;
  readonly gapFills: GapFillWriter;
}

/** A range Redis lost that nothing can re-send (no replay endpoint): the ingestor halts. */
export interface LostRange {
  readonly field: string;
  readonly fromSeq: bigint;
  readonly toSeq: bigint;
}

interface ReplayOutcome {
  /** Every sequence of the stream up to here that the engine has was received. */
  readonly coveredThroughSeq: bigint;
  readonly messages: number;
}

export class Ingestor implements ReceiverGate {
  private readonly deadLetterJobs: UnitJob[] = [];
  private readonly replaying = new Set<string>();
  private readonly replays = new Set<Promise<void>>();
  /** Look-ups of replayed bad frames still running (see onRejected). */
  private readonly lookups = new Set<Promise<void>>();
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDueMs = Number.POSITIVE_INFINITY;
  private forceAll = false;
  private waiting: { promise: Promise<void>; resolve: () => void } | undefined;
  private framesSinceCheck = 0;
  /** Redis lost the position: the next flush loop recovers before it writes anything. */
  private lost: PositionLostError | undefined;
  /** Ranges Redis lost that no replay endpoint can re-send: nothing is written any more. */
  private haltedRanges: LostRange[] | undefined;
  private closing = false;

  constructor(
    private readonly pipeline: IngestPipeline,
    private readonly flusher: Flusher,
    private readonly cassandra: CassandraWriter,
    private readonly replay: ReplayClient | undefined,
    private readonly counts: IngestCounts,
    private readonly metrics: IngestorMetrics,
    private readonly limits: IngestorLimits,
    private readonly logger: Logger,
    private readonly deadLetterKnown?: DeadLetterLookup,
    private readonly recovery?: PositionRecovery,
  ) {
    flusher.onPositionLost = (error) => this.positionLost(error);
  }

  /** Pipeline callback: a message arrived after its gap was recorded (settled or dead-lettered). */
  readonly onGapFilled = (fill: GapFill): void => {
    this.logger.warn({ shard: fill.shard, stream: fill.stream, seq: fill.seq, fromSeq: fill.gap.fromSeq, toSeq: fill.gap.toSeq, outcome: fill.outcome }, 'message arrived after its gap was recorded');
    this.recovery?.gapFills.mark(fill);
    this.kick();
  };

  /**
   * Redis lost the position (found by a write, the spool drain, or the check after a
   * reconnection): recover before anything else is written.
   */
  positionLost(error: PositionLostError): void {
    if (this.lost !== undefined || this.haltedRanges !== undefined) return;
    this.lost = error;
    this.kick();
  }

  /** After Redis reconnected: checks at once that it still holds this process's position. */
  checkPosition(): void {
    this.recovery?.writer.verify().catch((error: unknown) => {
      if (error instanceof PositionLostError) this.positionLost(error);
    });
  }

  /** The receiver's hot path: one frame from ZMQ. */
  readonly onFrame = (frame: Buffer, nowMs: number): void => {
    this.pipeline.ingest(frame, nowMs, 'live');
    if (this.pipeline.hasFullJob) this.kick();
    else this.arm();
  };

  /**
   * Pipeline callback for a frame that failed validation. The engine's replay serves the bad
   * frames of a range too (a frame the previous process never read has no other way back); one
   * whose dead letter is already stored was kept when it came live, and is not kept again.
   */
  readonly onRejected = (rejected: RejectedFrame): void => {
    const jobId = deadLetterJobId(rejected.raw);
    const lookup = this.deadLetterKnown;
    if (rejected.origin !== 'replay' || lookup === undefined) {
      this.keep(rejected, jobId);
      return;
    }
    // Unknown (Redis down) means keep: a second copy is better than none.
    const run = lookup(jobId)
      .catch(() => false)
      .then((known) => {
        if (!known) return this.keep(rejected, jobId);
        this.counts.deadLetters.inc('replayed_known');
        this.logger.debug({ shard: rejected.shard, jobId }, 'replayed bad frame already dead-lettered');
      })
      .finally(() => this.lookups.delete(run));
    this.lookups.add(run);
  };

  private keep(rejected: RejectedFrame, jobId: string): void {
    this.logger.warn({ shard: rejected.shard, field: rejected.field, reason: rejected.reason, origin: rejected.origin, jobId }, 'message rejected; dead-lettered');
    this.cassandra.deadLetter({ shard: rejected.shard, reason: rejected.reason, field: rejected.field, raw: rejected.raw });
    this.deadLetterJobs.push({
      queue: DEAD_LETTER_QUEUE,
      name: DEAD_LETTER_JOB_NAME,
      jobId,
      data: { shard: rejected.shard, source: 'ingestor', reason: rejected.reason, field: rejected.field ?? null, raw: rejected.raw, receivedAt: new Date().toISOString() },
    });
    this.counts.deadLetters.inc('queued');
    this.kick();
  }

  /** Messages in memory: held behind holes, in partial jobs, being written, dead letters. */
  get bufferedMessages(): number {
    return this.pipeline.heldCount + this.pipeline.batchedCount + this.flusher.inFlight + this.deadLetterJobs.length;
  }

  capacity(): Promise<void> | undefined {
    // Counting what is buffered walks every shard: do it every CAPACITY_CHECK_FRAMES frames.
    // The buffer can overshoot its bound by that many messages at most.
    if (this.waiting === undefined && ++this.framesSinceCheck < CAPACITY_CHECK_FRAMES) return undefined;
    this.framesSinceCheck = 0;
    if (this.bufferedMessages < this.limits.bufferMessagesMax && !this.flusher.spoolFull) return undefined;
    if (this.waiting === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.waiting = { promise, resolve };
      this.logger.warn({ buffered: this.bufferedMessages, max: this.limits.bufferMessagesMax, spoolFull: this.flusher.spoolFull }, 'buffer full; pausing ZMQ reads');
    }
    this.kick();
    return this.waiting.promise;
  }

  /**
   * After a restart: asks the replay endpoint for everything after the persisted position of
   * each stream, so messages the previous process received but never enqueued come back.
   */
  catchUp(): void {
    if (this.replay === undefined) return;
    for (const { stream, fromSeq } of this.pipeline.replayStarts()) {
      this.startReplay(stream, fromSeq, undefined, 'catch-up');
    }
  }

  /** Heartbeat status: per-shard last enqueued sequence and the spool. */
  status(): Record<string, unknown> {
    return {
      lastEnqueued: Object.fromEntries(this.flusher.confirmed),
      buffered: this.bufferedMessages,
      held: this.pipeline.heldCount,
      spooling: this.flusher.spooling,
      halted: this.haltedRanges?.map((r) => ({ field: r.field, fromSeq: r.fromSeq.toString(), toSeq: r.toSeq.toString() })) ?? null,
      totals: {
        received: this.counts.received.sum(),
        invalid: this.counts.invalid.sum(),
        duplicates: this.counts.duplicates.sum(),
        gaps: this.counts.gaps.sum(),
        enqueued: this.counts.enqueued.sum(),
        replays: Object.fromEntries(this.counts.replayed.entries()),
      },
    };
  }

  /** SIGTERM: stop taking holes to replay, settle open holes, write everything, stop. */
  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.replays]);
    await Promise.allSettled([...this.lookups]);
    const nowMs = Date.now();
    for (const { stream, hole } of this.pipeline.expiredHoles(Number.POSITIVE_INFINITY)) {
      if (this.replay === undefined) break;
      // One last try to fill it; whatever is still missing after that is recorded below.
      await this.replayRange(stream, hole.fromSeq, hole.toSeq).catch(() => undefined);
    }
    await Promise.allSettled([...this.lookups]);
    this.closing = true;
    if (this.replay === undefined) {
      // Nothing could ask for them after a restart: record the holes, keep what waited behind them.
      for (const { stream, gap } of this.pipeline.skipAllHoles(nowMs)) this.recordGap(stream, gap, 'shutdown');
    } else if (this.pipeline.heldCount > 0) {
      // The position is persisted only up to the first open hole, so the restart's catch-up
      // replay asks for the hole (and re-sends what waited behind it, not written here).
      for (const { stream, hole } of this.pipeline.expiredHoles(Number.POSITIVE_INFINITY)) {
        this.logger.info({ shard: stream, fromSeq: hole.fromSeq, toSeq: hole.toSeq }, 'hole still open at shutdown; left for the restart replay');
      }
      this.logger.info({ held: this.pipeline.heldCount }, 'messages held behind open holes not written; the restart replay re-sends them');
    }
    this.forceAll = true;
    clearTimeout(this.timer);
    const deadline = Date.now() + this.limits.shutdownFlushMs;
    while (this.flushing !== undefined || this.pipeline.batchedCount > 0 || this.deadLetterJobs.length > 0) {
      if (Date.now() > deadline) {
        this.logger.error({ buffered: this.bufferedMessages }, 'shutdown flush did not finish in time');
        break;
      }
      if (this.flushing === undefined) this.run();
      await this.flushing;
    }
    this.metrics.sync();
  }

  /**
   * The settler of `shard` is behind (a job is waiting in its queue) or has caught up. While
   * behind, partial jobs wait longer to fill; when it catches up, the earlier due time counts.
   */
  setBacklogged(shard: string, backlogged: boolean): void {
    this.pipeline.setBacklogged(shard, backlogged);
    if (!backlogged) this.arm();
  }

  /** Flush as soon as the current tick ends. */
  private kick(): void {
    if (this.flushScheduled || this.flushing !== undefined) return;
    this.flushScheduled = true;
    setImmediate(() => this.run());
  }

  /** Arms the timer for the next partial job or reorder window, if not armed earlier. */
  private arm(): void {
    if (this.flushing !== undefined || this.flushScheduled) return;
    // Hot path shortcut: anything that becomes due from now on is due at least this late.
    if (this.timerDueMs <= Date.now() + this.limits.minDueDelayMs) return;
    const due = this.pipeline.nextDueMs((stream) => this.replaying.has(stream));
    if (due === undefined || due >= this.timerDueMs) return;
    clearTimeout(this.timer);
    this.timerDueMs = due;
    this.timer = setTimeout(() => this.run(), Math.max(0, due - Date.now()));
  }

  private run(): void {
    this.flushScheduled = false;
    clearTimeout(this.timer);
    this.timerDueMs = Number.POSITIVE_INFINITY;
    if (this.flushing !== undefined) return;
    this.flushing = this.flushLoop()
      .catch((error: unknown) => {
        // A bug, not an outage (outages are spooled): log it loudly and keep the process alive;
        // the buffer bound stops reads if nothing moves any more.
        this.logger.error({ err: error }, 'flush failed');
      })
      .finally(() => {
        this.flushing = undefined;
        this.releaseWaiters();
        if (this.pipeline.hasFullJob || this.deadLetterJobs.length > 0) this.kick();
        else this.arm();
      });
  }

  private async flushLoop(): Promise<void> {
    for (;;) {
      if (this.haltedRanges !== undefined) return;
      if (this.lost !== undefined) {
        await this.recover(this.lost);
        continue;
      }
      const nowMs = Date.now();
      this.handleExpiredHoles(nowMs);
      const cut = this.pipeline.cut(nowMs, this.forceAll, this.limits.flushJobsMax);
      const extra = this.deadLetterJobs.splice(0, this.limits.flushJobsMax);
      if (cut === undefined && extra.length === 0) break;
      try {
        await this.flusher.write(cut?.jobs ?? [], extra, cut?.marks ?? {});
      } catch (error) {
        if (!(error instanceof PositionLostError)) throw error;
        // The cut jobs are above the position to be rebuilt: the replay re-sends their messages.
        // Dead letters are not replayed by position: keep them for the next write.
        this.deadLetterJobs.unshift(...extra);
        this.lost = error;
        continue;
      }
      this.metrics.sync();
      this.metrics.buffered.set(this.bufferedMessages);
      this.releaseWaiters();
    }
  }

  private releaseWaiters(): void {
    if (this.waiting !== undefined && this.bufferedMessages < this.limits.bufferMessagesMax && !this.flusher.spoolFull) {
      this.waiting.resolve();
      this.waiting = undefined;
    }
  }

  private handleExpiredHoles(nowMs: number): void {
    // At shutdown open holes stay open (see flushAll): no new replay, no gap.
    if (this.closing) return;
    for (const { stream, hole } of this.pipeline.expiredHoles(nowMs)) {
      if (this.replaying.has(stream)) continue;
      if (this.replay !== undefined) {
        this.startReplay(stream, hole.fromSeq, hole, 'hole');
        continue;
      }
      const gap = this.pipeline.skipHole(stream, nowMs);
      if (gap !== undefined) this.recordGap(stream, gap, 'reorder window expired');
    }
  }

  private startReplay(stream: string, fromSeq: bigint, hole: SequenceHole | undefined, why: 'hole' | 'catch-up'): void {
    this.replaying.add(stream);
    const run = this.replayRange(stream, fromSeq, hole?.toSeq)
      .then((outcome) => {
        this.counts.replayed.inc('ok');
        this.logger.info({ stream, fromSeq, why, messages: outcome.messages, coveredThroughSeq: outcome.coveredThroughSeq }, 'replay done');
        // A hole that is still open although the engine answered past it: the engine does not
        // have those sequences. Anything beyond what the replay covered keeps its own window.
        const open = this.pipeline.hole(stream);
        if (open !== undefined && open.toSeq < outcome.coveredThroughSeq) this.skipAndRecord(stream, 'not in the engine replay');
      })
      .catch((error: unknown) => {
        this.counts.replayed.inc('failed');
        this.logger.warn({ err: error, stream, fromSeq, why }, 'replay failed');
        const open = this.pipeline.hole(stream);
        if (open !== undefined && (hole === undefined || open.fromSeq <= hole.toSeq)) this.skipAndRecord(stream, 'replay failed');
      })
      .finally(() => {
        this.replaying.delete(stream);
        this.replays.delete(run);
        this.kick();
      });
    this.replays.add(run);
  }

  /** Pages through the replay endpoint from `fromSeq` until the engine has nothing more or `untilSeq` arrived. */
  private async replayRange(stream: string, fromSeq: bigint, untilSeq: bigint | undefined): Promise<ReplayOutcome> {
    const client = this.replay!;
    let from = fromSeq;
    let maxSeen = fromSeq - 1n;
    let messages = 0;
    for (;;) {
      // What we hold was journaled by the engine before it was sent: a short page proves that
      // the engine has nothing else below it.
      const heldTop = this.pipeline.highestSeq(stream);
      const frames = await client.page(stream, from);
      const nowMs = Date.now();
      for (const frame of frames) {
        const seq = this.pipeline.ingest(frame, nowMs, 'replay');
        if (seq !== NOT_SEQUENCED && seq > maxSeen) maxSeen = seq;
      }
      messages += frames.length;
      this.kick();
      if (frames.length < client.pageMessages) return { coveredThroughSeq: heldTop > maxSeen ? heldTop : maxSeen, messages };
      if ((untilSeq !== undefined && maxSeen >= untilSeq) || maxSeen < from) return { coveredThroughSeq: maxSeen, messages };
      from = maxSeen + 1n;
      // Replayed messages are released into batches: let the flusher keep up (messages held
      // behind the hole are not counted, or the replay that frees them would wait on them).
      while (this.pipeline.batchedCount + this.flusher.inFlight >= this.limits.bufferMessagesMax) await sleep(5);
    }
  }

  private skipAndRecord(stream: string, why: string): void {
    const gap = this.pipeline.skipHole(stream, Date.now());
    if (gap !== undefined) this.recordGap(stream, gap, why);
  }

  private recordGap(stream: string, gap: SequenceRange, why: string): void {
    this.logger.warn({ shard: stream, fromSeq: gap.fromSeq, toSeq: gap.toSeq, why }, 'sequence gap recorded');
    this.cassandra.gap({ shard: stream, fromSeq: gap.fromSeq, toSeq: gap.toSeq });
    this.kick();
  }

  /**
   * Redis lost the position (restart without its data, failover to a lagging replica): the
   * jobs after what it still holds may be gone, settled or not. Rebuilds the position from what
   * Redis holds and the settled shard watermarks in Cassandra (rebuildState), drops what this
   * process held or spooled above it, and asks the engine's replay for everything after it, so
   * every shard's next job continues the settler's chain. Without a replay endpoint nothing
   * can re-send the lost range: the ingestor halts, naming it, rather than skip it.
   */
  private async recover(error: PositionLostError): Promise<void> {
    const recovery = this.recovery;
    if (recovery === undefined) throw error;
    this.logger.error({ err: error, lost: error.fields.map((f) => ({ field: f.field, stored: f.storedSeq, confirmed: f.confirmedSeq })) }, 'ingest position in Redis went back (Redis lost writes); rebuilding it from the shard watermarks');
    const confirmed = new Map(recovery.writer.confirmed);
    const watermarks = await this.retrying('read the shard watermarks', recovery.watermarks);
    const hash = await this.retrying('read the state hash', () => recovery.writer.readState());
    const { state } = rebuildState({ hash, watermarks, tradeShards: recovery.tradeShards, sequenceScope: recovery.sequenceScope });
    // A MULTI in flight when the connection dropped is re-sent by ioredis to the server it
    // reconnects to: its jobs may be there (the commit script refused only the position). They
    // continue a chain that server no longer has.
    const shardPositions = new Map([...recovery.tradeShards, 'funding'].map((shard) => [shard, state.get(shard) ?? 0n]));
    const removed = await this.retrying('remove jobs above the rebuilt position', () => recovery.writer.removeJobsAbove(shardPositions));
    if (this.replay === undefined) {
      const ranges: LostRange[] = [];
      for (const [field, seq] of confirmed) {
        const from = (state.get(field) ?? 0n) + 1n;
        if (from <= seq) ranges.push({ field, fromSeq: from, toSeq: seq });
      }
      if (ranges.length === 0) {
        // Everything Redis lost was settled already: put the position back and go on.
        const merged = new Map(state);
        for (const [field, seq] of confirmed) if (seq > (merged.get(field) ?? 0n)) merged.set(field, seq);
        await this.retrying('write the rebuilt state', () => recovery.writer.resetState(merged));
        this.lost = undefined;
        this.counts.positionLost.inc('recovered');
        this.logger.warn({ state: stateFields(state) }, 'ingest position rewritten: Redis lost only what was settled');
        return;
      }
      this.haltedRanges = ranges;
      this.lost = undefined;
      this.counts.positionLost.inc('halted');
      this.metrics.halted.set(1);
      for (const range of ranges) {
        // toSeq is what Redis had confirmed; nothing after it is written either while halted.
        this.logger.fatal(
          { shard: range.field, fromSeq: range.fromSeq, toSeq: range.toSeq, removedJobs: removed },
          'Redis lost this range and there is no replay endpoint (zmq.replay_endpoint) to re-send it: ingestion halted, nothing skipped; re-drive the range from the engine, then restart the ingestor',
        );
      }
      return;
    }
    await this.retrying('write the rebuilt state', () => recovery.writer.resetState(state));
    const spooledDropped = await this.flusher.resetTo(state);
    this.pipeline.reset(state);
    this.lost = undefined;
    this.counts.positionLost.inc('recovered');
    this.logger.warn({ state: stateFields(state), watermarks: stateFields(watermarks), removedJobs: removed, spooledDropped }, 'ingest position rebuilt from the shard watermarks; replaying from there');
    this.catchUp();
  }

  /** Runs `step` until it succeeds (Redis or Cassandra may still be coming back). */
  private async retrying<T>(what: string, step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (this.closing) throw error;
        this.logger.warn({ err: error, attempt }, `recovery could not ${what}; retrying`);
        await sleep(this.recovery?.retryIntervalMs ?? 500);
      }
    }
  }
}
