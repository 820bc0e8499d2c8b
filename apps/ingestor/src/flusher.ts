/**
 * Moves ready jobs from the pipeline to Redis, one enqueue unit (one MULTI) at a time, so a
 * shard's jobs reach Redis in order. When a write fails, that unit and every later one go to the
 * spool file until a background drain has written the spool to Redis in order; only then do
 * units go straight to Redis again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SETTLE_JOB_NAME, settlementQueueName, type CutJob } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { IngestCounts } from './counters.js';
import type { EnqueueUnit, UnitJob } from './enqueue-unit.js';
import { encodeJobData } from './job-encoding.js';
import type { JobWriter } from './job-writer.js';
import type { IngestorMetrics } from './metrics.js';
import { PositionLostError } from './position-lost-error.js';
import type { Spool } from './spool.js';
import { SpoolError } from './spool-error.js';

export interface FlusherOptions {
  /** Jobs per MULTI. */
  readonly flushJobsMax: number;
  /** While spooling, how often to check whether Redis is back, ms. */
  readonly spoolProbeIntervalMs: number;
}

/** Spooled units written to Redis per MULTI while draining. */
const DRAIN_UNITS_PER_WRITE = 20;

const SETTLE_QUEUE_PREFIX = settlementQueueName('');

export class Flusher {
  private inFlightMessages = 0;
  private draining: Promise<void> | undefined;
  private closed = false;
  /** Set while a recovery replaces the spool: the drain loop stops. */
  private drainPaused = false;
  /** Shard / state field → last value confirmed in Redis. */
  readonly confirmed = new Map<string, string>();
  /** Called when a drain write finds that Redis lost the position (see PositionLostError). */
  onPositionLost: (error: PositionLostError) => void = () => undefined;

  constructor(
    private readonly writer: JobWriter,
    private readonly spool: Spool,
    private readonly counts: IngestCounts,
    private readonly metrics: IngestorMetrics,
    private readonly options: FlusherOptions,
    private readonly logger: Logger,
  ) {
    this.updateSpoolGauges();
  }

  /** Messages in the unit being written. */
  get inFlight(): number {
    return this.inFlightMessages;
  }

  get spooling(): boolean {
    return this.spool.active;
  }

  /** The spool cannot take more: ingestion must stop until it drains. */
  get spoolFull(): boolean {
    return this.spool.full;
  }

  /** Builds the unit for cut jobs (plus dead-letter jobs) and writes it to Redis or the spool. */
  async write(jobs: readonly CutJob[], extraJobs: readonly UnitJob[], marks: Record<string, string>): Promise<void> {
    const unitJobs: UnitJob[] = jobs.map((job) => ({
      queue: settlementQueueName(job.shard),
      name: SETTLE_JOB_NAME,
      jobId: job.jobId,
      data: encodeJobData(job.shard, job.prevLastSeq, job.messages),
    }));
    for (const extra of extraJobs) unitJobs.push(extra);
    const unit: EnqueueUnit = { jobs: unitJobs, marks };
    const messages = jobs.reduce((n, j) => n + j.messages.length, 0);
    this.inFlightMessages += messages;
    try {
      await this.writeUnit(unit, jobs);
    } finally {
      this.inFlightMessages -= messages;
    }
  }

  /** Starts draining the spool in the background (after a restart that found one). */
  startDrain(): void {
    if (this.spool.active && !this.drainPaused) this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /**
   * After Redis lost the position: stops the drain, drops the spooled units (all above the
   * rebuilt position; the replay re-sends them) and takes `state` as what Redis holds.
   * Returns the units dropped.
   */
  async resetTo(state: ReadonlyMap<string, bigint>): Promise<number> {
    this.drainPaused = true;
    try {
      await this.draining;
      const dropped = this.spool.discardPending();
      this.confirmed.clear();
      for (const [field, seq] of state) this.confirmed.set(field, seq.toString());
      this.updateSpoolGauges();
      return dropped;
    } finally {
      this.drainPaused = false;
    }
  }

  /** Shutdown: tries to empty the spool for up to `timeoutMs`, then stops the drain loop. */
  async close(timeoutMs: number): Promise<void> {
    if (this.draining !== undefined) {
      await Promise.race([this.draining, sleep(timeoutMs)]);
    }
    this.closed = true;
    await this.draining;
  }

  private async writeUnit(unit: EnqueueUnit, jobs: readonly CutJob[]): Promise<void> {
    for (;;) {
      if (!this.spool.active) {
        try {
          await this.writer.write([unit]);
          this.confirm(unit);
          const nowMs = Date.now();
          for (const job of jobs) this.metrics.enqueueLatency.observe((nowMs - job.firstAddedAtMs) / 1000);
          return;
        } catch (error) {
          // Not an outage: Redis answers but lost what came before; spooling would build on it.
          if (error instanceof PositionLostError) throw error;
          this.logger.warn({ err: error, jobs: unit.jobs.length }, 'Redis write failed; spooling to disk until Redis is back');
        }
      }
      try {
        // Once one unit is spooled, every later one follows it, so the spool keeps shard order.
        this.spool.append(unit);
        this.updateSpoolGauges();
        this.startDrain();
        return;
      } catch (error) {
        if (!(error instanceof SpoolError) || error.code !== 'SPOOL_FULL') throw error;
        // Neither Redis nor the spool takes it: keep it in memory; the full buffer stops reading.
        this.logger.error({ file: this.spool.file, bytes: this.spool.sizeBytes }, 'spool full; waiting for Redis');
        this.startDrain();
        await sleep(this.options.spoolProbeIntervalMs);
      }
    }
  }

  private async drain(): Promise<void> {
    let units = 0;
    const started = Date.now();
    while (this.spool.active && !this.closed && !this.drainPaused) {
      if (!(await this.writer.ping())) {
        await sleep(this.options.spoolProbeIntervalMs);
        continue;
      }
      const batch = this.spool.nextBatch(DRAIN_UNITS_PER_WRITE);
      if (batch.units.length === 0) break;
      try {
        await this.writer.write(batch.units);
      } catch (error) {
        if (error instanceof PositionLostError) {
          // The spool continues a chain Redis no longer has: the recovery decides what to do.
          this.onPositionLost(error);
          return;
        }
        this.logger.warn({ err: error }, 'spool drain write failed; retrying');
        await sleep(this.options.spoolProbeIntervalMs);
        continue;
      }
      this.spool.commit(batch);
      for (const unit of batch.units) this.confirm(unit);
      units += batch.units.length;
      this.updateSpoolGauges();
    }
    // Checked right after the last commit, with no await in between: nothing can be appended
    // after the drain saw the end and before the spool is emptied.
    if (this.spool.finishIfDrained()) {
      this.logger.info({ units, durationMs: Date.now() - started }, 'spool drained; writing to Redis directly again');
    }
    this.updateSpoolGauges();
  }

  private confirm(unit: EnqueueUnit): void {
    for (const [field, value] of Object.entries(unit.marks)) this.confirmed.set(field, value);
    for (const job of unit.jobs) {
      if (!job.queue.startsWith(SETTLE_QUEUE_PREFIX)) continue;
      const data = job.data as { messages?: unknown[] };
      this.counts.enqueued.inc(job.queue.slice(SETTLE_QUEUE_PREFIX.length), data.messages?.length ?? 0);
    }
  }

  private updateSpoolGauges(): void {
    this.metrics.spoolDepth.set(this.spool.depthUnits);
    this.metrics.spoolBytes.set(this.spool.sizeBytes);
  }
}
