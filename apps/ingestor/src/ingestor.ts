/**
 * The ingestor: ZMQ frames → pipeline (validate, sequence, batch) → flusher (Redis or spool).
 * This class owns the timing: when to flush, when a reorder window has run out, when to ask the
 * engine's replay endpoint, and the order of shutdown. What happens then is in modules of its
 * own: dead-letter-intake (rejected frames), replayer (the replay endpoint), position-recovery
 * (a Redis that lost the position), flusher (the writes).
 */
import type { SequenceRange } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { CassandraWriter } from './cassandra-writer.js';
import type { IngestCounts } from './counters.js';
import { DeadLetterIntake, type DeadLetterLookup } from './dead-letter-intake.js';
import type { Flusher } from './flusher.js';
import type { IngestorMetrics } from './metrics.js';
import type { GapFill, IngestPipeline, RejectedFrame } from './pipeline.js';
import { PositionLostError } from './position-lost-error.js';
import { PositionRecoverer, type LostRange, type PositionRecovery } from './position-recovery.js';
import type { ReceiverGate } from './receiver.js';
import type { ReplayClient } from './replay-client.js';
import { Replayer } from './replayer.js';

export { DEAD_LETTER_JOB_NAME, deadLetterJobId, type DeadLetterLookup } from './dead-letter-intake.js';
export type { LostRange, PositionRecovery } from './position-recovery.js';

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

export class Ingestor implements ReceiverGate {
  private readonly deadLetters: DeadLetterIntake;
  /** Only with a replay endpoint (zmq.replay_endpoint). */
  private readonly replayer: Replayer | undefined;
  /** Only with what a recovery needs; without, a lost position fails the flush. */
  private readonly recoverer: PositionRecoverer | undefined;
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
    replay: ReplayClient | undefined,
    private readonly counts: IngestCounts,
    private readonly metrics: IngestorMetrics,
    private readonly limits: IngestorLimits,
    private readonly logger: Logger,
    deadLetterKnown?: DeadLetterLookup,
    private readonly recovery?: PositionRecovery,
  ) {
    const kick = () => this.kick();
    this.deadLetters = new DeadLetterIntake({ cassandra, counts, logger, known: deadLetterKnown, kick });
    this.replayer =
      replay &&
      new Replayer(replay, {
        pipeline,
        flusher,
        counts,
        logger,
        bufferMessagesMax: limits.bufferMessagesMax,
        kick,
        skipAndRecord: (stream, why) => this.skipAndRecord(stream, why),
      });
    this.recoverer =
      recovery &&
      new PositionRecoverer(recovery, {
        pipeline,
        flusher,
        counts,
        metrics,
        logger,
        canReplay: replay !== undefined,
        closing: () => this.closing,
        resumed: () => {
          this.lost = undefined;
        },
        halted: (ranges) => {
          this.haltedRanges = ranges;
          this.lost = undefined;
        },
        catchUp: () => this.catchUp(),
      });
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

  /** Pipeline callback for a frame that failed validation (see DeadLetterIntake.onRejected). */
  readonly onRejected = (rejected: RejectedFrame): void => this.deadLetters.onRejected(rejected);

  /** Messages in memory: held behind holes, in partial jobs, being written, dead letters. */
  get bufferedMessages(): number {
    return this.pipeline.heldCount + this.pipeline.batchedCount + this.flusher.inFlight + this.deadLetters.jobs.length;
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
    this.replayer?.catchUp();
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
    await this.replayer?.settled();
    await this.deadLetters.lookupsSettled();
    const nowMs = Date.now();
    for (const { stream, hole } of this.pipeline.expiredHoles(Number.POSITIVE_INFINITY)) {
      if (this.replayer === undefined) break;
      // One last try to fill it; whatever is still missing after that is recorded below.
      await this.replayer.range(stream, hole.fromSeq, hole.toSeq).catch(() => undefined);
    }
    await this.deadLetters.lookupsSettled();
    this.closing = true;
    if (this.replayer === undefined) {
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
    while (this.flushing !== undefined || this.pipeline.batchedCount > 0 || this.deadLetters.jobs.length > 0) {
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
    const due = this.pipeline.nextDueMs((stream) => this.replayer?.isReplaying(stream) === true);
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
        if (this.pipeline.hasFullJob || this.deadLetters.jobs.length > 0) this.kick();
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
      const extra = this.deadLetters.jobs.splice(0, this.limits.flushJobsMax);
      if (cut === undefined && extra.length === 0) break;
      try {
        await this.flusher.write(cut?.jobs ?? [], extra, cut?.marks ?? {});
      } catch (error) {
        if (!(error instanceof PositionLostError)) throw error;
        // The cut jobs are above the position to be rebuilt: the replay re-sends their messages.
        // Dead letters are not replayed by position: keep them for the next write.
        this.deadLetters.jobs.unshift(...extra);
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
      if (this.replayer?.isReplaying(stream)) continue;
      if (this.replayer !== undefined) {
        this.replayer.start(stream, hole.fromSeq, hole, 'hole');
        continue;
      }
      const gap = this.pipeline.skipHole(stream, nowMs);
      if (gap !== undefined) this.recordGap(stream, gap, 'reorder window expired');
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

  /** See PositionRecoverer.recover(). */
  private async recover(error: PositionLostError): Promise<void> {
    if (this.recoverer === undefined) throw error;
    await this.recoverer.recover(error);
  }
}
