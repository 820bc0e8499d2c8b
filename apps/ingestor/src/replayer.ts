/**
 * Asks the engine's replay endpoint for what this process is missing: a hole whose reorder
 * window ran out, or, after a restart, everything after the persisted position. Replayed frames
 * go through the pipeline like live ones; a hole the engine cannot fill is skipped and recorded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SequenceHole } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { IngestCounts } from './counters.js';
import type { Flusher } from './flusher.js';
import { NOT_SEQUENCED, type IngestPipeline } from './pipeline.js';
import type { ReplayClient } from './replay-client.js';

interface ReplayOutcome {
  /** Every sequence of the stream up to here that the engine has was received. */
  readonly coveredThroughSeq: bigint;
  readonly messages: number;
}

/** The parts of the ingestor a replay feeds, and how it reports back. */
export interface ReplayParts {
  readonly pipeline: IngestPipeline;
  readonly flusher: Flusher;
  readonly counts: IngestCounts;
  readonly logger: Logger;
  /** Messages held in memory before reading stops (batch.buffer_messages_max). */
  readonly bufferMessagesMax: number;
  /** Flush as soon as the current tick ends. */
  readonly kick: () => void;
  /** Give up on the stream's open hole: skip it and record the gap. */
  readonly skipAndRecord: (stream: string, why: string) => void;
}

export class Replayer {
  private readonly replaying = new Set<string>();
  private readonly replays = new Set<Promise<void>>();
  /**
   * The current replay of each stream. A replay started later (the catch-up after Redis lost the
   * position and the pipeline started over) supersedes one still running: the older one stops
   * paging and judges no hole, since what it saw was measured against a position that is gone.
   * (Seen in a chaos run: a catch-up from 7748 went on after the position was rebuilt at 7797;
   * its end found the hole 7798-23747 it had itself delivered before the reset, and recorded it
   * as a gap; the new replay's messages were then dead-lettered as arriving after their gap.)
   */
  private readonly currentRun = new Map<string, number>();
  private runs = 0;

  constructor(
    private readonly client: ReplayClient,
    private readonly parts: ReplayParts,
  ) {}

  isReplaying(stream: string): boolean {
    return this.replaying.has(stream);
  }

  /** Resolves once every replay started so far has ended, however it ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.replays]);
  }

  /**
   * After a restart: asks the replay endpoint for everything after the persisted position of
   * each stream, so messages the previous process received but never enqueued come back.
   */
  catchUp(): void {
    for (const { stream, fromSeq } of this.parts.pipeline.replayStarts()) {
      this.start(stream, fromSeq, undefined, 'catch-up');
    }
  }

  start(stream: string, fromSeq: bigint, hole: SequenceHole | undefined, why: 'hole' | 'catch-up'): void {
    const { pipeline, counts, logger } = this.parts;
    const runId = ++this.runs;
    this.currentRun.set(stream, runId);
    const current = (): boolean => this.currentRun.get(stream) === runId;
    this.replaying.add(stream);
    const run = this.range(stream, fromSeq, hole?.toSeq, current)
      .then((outcome) => {
        if (!current()) {
          logger.info({ stream, fromSeq, why, messages: outcome.messages }, 'replay superseded by a later one (the position was rebuilt): it judges no hole');
          return;
        }
        counts.replayed.inc('ok');
        logger.info({ stream, fromSeq, why, messages: outcome.messages, coveredThroughSeq: outcome.coveredThroughSeq }, 'replay done');
        // A hole that is still open although the engine answered past it: the engine does not
        // have those sequences. Anything beyond what the replay covered keeps its own window.
        const open = pipeline.hole(stream);
        if (open !== undefined && open.toSeq < outcome.coveredThroughSeq) this.parts.skipAndRecord(stream, 'not in the engine replay');
      })
      .catch((error: unknown) => {
        if (!current()) return;
        counts.replayed.inc('failed');
        logger.warn({ err: error, stream, fromSeq, why }, 'replay failed');
        const open = pipeline.hole(stream);
        if (open !== undefined && (hole === undefined || open.fromSeq <= hole.toSeq)) this.parts.skipAndRecord(stream, 'replay failed');
      })
      .finally(() => {
        if (current()) this.replaying.delete(stream);
        this.replays.delete(run);
        this.parts.kick();
      });
    this.replays.add(run);
  }

  /**
   * Pages through the replay endpoint from `fromSeq` until the engine has nothing more or
   * `untilSeq` arrived, or until `current` says a later replay of the stream took over.
   */
  async range(stream: string, fromSeq: bigint, untilSeq: bigint | undefined, current: () => boolean = () => true): Promise<ReplayOutcome> {
    const { client } = this;
    const { pipeline, flusher } = this.parts;
    let from = fromSeq;
    let maxSeen = fromSeq - 1n;
    let messages = 0;
    for (;;) {
      // What we hold was journaled by the engine before it was sent: a short page proves that
      // the engine has nothing else below it.
      const heldTop = pipeline.highestSeq(stream);
      const frames = await client.page(stream, from);
      if (!current()) return { coveredThroughSeq: maxSeen, messages };
      const nowMs = Date.now();
      for (const frame of frames) {
        const seq = pipeline.ingest(frame, nowMs, 'replay');
        if (seq !== NOT_SEQUENCED && seq > maxSeen) maxSeen = seq;
      }
      messages += frames.length;
      this.parts.kick();
      if (frames.length < client.pageMessages) return { coveredThroughSeq: heldTop > maxSeen ? heldTop : maxSeen, messages };
      if ((untilSeq !== undefined && maxSeen >= untilSeq) || maxSeen < from) return { coveredThroughSeq: maxSeen, messages };
      from = maxSeen + 1n;
      // Replayed messages are released into batches: let the flusher keep up (messages held
      // behind the hole are not counted, or the replay that frees them would wait on them).
      while (pipeline.batchedCount + flusher.inFlight >= this.parts.bufferMessagesMax) await sleep(5);
    }
  }
}
