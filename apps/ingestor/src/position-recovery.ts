/**
 * Recovery from a Redis that lost the ingest position (restart without its data, failover to a
 * lagging replica): the position is rebuilt from what Redis still holds and the settled shard
 * watermarks in Cassandra, or, when nothing can re-send what was lost, ingestion halts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@settlement/runtime';
import type { IngestCounts } from './counters.js';
import type { Flusher } from './flusher.js';
import type { GapFillWriter } from './gap-fill-writer.js';
import type { JobWriter } from './job-writer.js';
import type { IngestorMetrics } from './metrics.js';
import type { IngestPipeline } from './pipeline.js';
import type { PositionLostError } from './position-lost-error.js';
import { rebuildState, stateFields } from './state.js';

/** What a recovery from a Redis that lost the position needs (see PositionRecoverer.recover()). */
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

/** The parts of the ingestor a recovery reads and resets, and how it reports back. */
export interface RecoveryParts {
  readonly pipeline: IngestPipeline;
  readonly flusher: Flusher;
  readonly counts: IngestCounts;
  readonly metrics: IngestorMetrics;
  readonly logger: Logger;
  /** Whether the engine's replay endpoint can re-send what Redis lost. */
  readonly canReplay: boolean;
  /** True once shutdown has begun: a failed step is not tried again. */
  readonly closing: () => boolean;
  /** The position is good again: writing may go on. */
  readonly resumed: () => void;
  /** Redis lost ranges nothing can re-send: nothing is written any more. */
  readonly halted: (ranges: LostRange[]) => void;
  /** Ask the replay endpoint for everything after the (rebuilt) position. */
  readonly catchUp: () => void;
}

export class PositionRecoverer {
  constructor(
    private readonly recovery: PositionRecovery,
    private readonly parts: RecoveryParts,
  ) {}

  /**
   * Redis lost the position (restart without its data, failover to a lagging replica): the
   * jobs after what it still holds may be gone, settled or not. Rebuilds the position from what
   * Redis holds and the settled shard watermarks in Cassandra (rebuildState), drops what this
   * process held or spooled above it, and asks the engine's replay for everything after it, so
   * every shard's next job continues the settler's chain. Without a replay endpoint nothing
   * can re-send the lost range: the ingestor halts, naming it, rather than skip it.
   */
  async recover(error: PositionLostError): Promise<void> {
    const { recovery, parts } = this;
    parts.logger.error({ err: error, lost: error.fields.map((f) => ({ field: f.field, stored: f.storedSeq, confirmed: f.confirmedSeq })) }, 'ingest position in Redis went back (Redis lost writes); rebuilding it from the shard watermarks');
    const confirmed = new Map(recovery.writer.confirmed);
    const watermarks = await this.retrying('read the shard watermarks', recovery.watermarks);
    const hash = await this.retrying('read the state hash', () => recovery.writer.readState());
    const { state } = rebuildState({ hash, watermarks, tradeShards: recovery.tradeShards, sequenceScope: recovery.sequenceScope });
    // A MULTI in flight when the connection dropped is re-sent by ioredis to the server it
    // reconnects to: its jobs may be there (the commit script refused only the position). They
    // continue a chain that server no longer has.
    const shardPositions = new Map([...recovery.tradeShards, 'funding'].map((shard) => [shard, state.get(shard) ?? 0n]));
    const removed = await this.retrying('remove jobs above the rebuilt position', () => recovery.writer.removeJobsAbove(shardPositions));
    if (!parts.canReplay) {
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
        parts.resumed();
        parts.counts.positionLost.inc('recovered');
        parts.logger.warn({ state: stateFields(state) }, 'ingest position rewritten: Redis lost only what was settled');
        return;
      }
      parts.halted(ranges);
      parts.counts.positionLost.inc('halted');
      parts.metrics.halted.set(1);
      for (const range of ranges) {
        // toSeq is what Redis had confirmed; nothing after it is written either while halted.
        parts.logger.fatal(
          { shard: range.field, fromSeq: range.fromSeq, toSeq: range.toSeq, removedJobs: removed },
          'Redis lost this range and there is no replay endpoint (zmq.replay_endpoint) to re-send it: ingestion halted, nothing skipped; re-drive the range from the engine, then restart the ingestor',
        );
      }
      return;
    }
    await this.retrying('write the rebuilt state', () => recovery.writer.resetState(state));
    const spooledDropped = await parts.flusher.resetTo(state);
    parts.pipeline.reset(state);
    parts.resumed();
    parts.counts.positionLost.inc('recovered');
    parts.logger.warn({ state: stateFields(state), watermarks: stateFields(watermarks), removedJobs: removed, spooledDropped }, 'ingest position rebuilt from the shard watermarks; replaying from there');
    parts.catchUp();
  }

  /** Runs `step` until it succeeds (Redis or Cassandra may still be coming back). */
  private async retrying<T>(what: string, step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (this.parts.closing()) throw error;
        this.parts.logger.warn({ err: error, attempt }, `recovery could not ${what}; retrying`);
        await sleep(this.recovery.retryIntervalMs);
      }
    }
  }
}
