/**
 * Frames that failed validation: each is written to Cassandra's dead_letters table and becomes a
 * job of the dead-letter queue, written to Redis with the next flush.
 */
import { createHash } from 'node:crypto';
import { DEAD_LETTER_QUEUE } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import type { CassandraWriter } from './cassandra-writer.js';
import type { IngestCounts } from './counters.js';
import type { UnitJob } from './enqueue-unit.js';
import type { RejectedFrame } from './pipeline.js';

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

export interface DeadLetterParts {
  readonly cassandra: CassandraWriter;
  readonly counts: IngestCounts;
  readonly logger: Logger;
  readonly known: DeadLetterLookup | undefined;
  /** Flush as soon as the current tick ends. */
  readonly kick: () => void;
}

export class DeadLetterIntake {
  /** Dead-letter jobs not written to Redis yet, oldest first. */
  readonly jobs: UnitJob[] = [];
  /** Look-ups of replayed bad frames still running (see onRejected). */
  private readonly lookups = new Set<Promise<void>>();

  constructor(private readonly parts: DeadLetterParts) {}

  /**
   * Pipeline callback for a frame that failed validation. The engine's replay serves the bad
   * frames of a range too (a frame the previous process never read has no other way back); one
   * whose dead letter is already stored was kept when it came live, and is not kept again.
   */
  readonly onRejected = (rejected: RejectedFrame): void => {
    const jobId = deadLetterJobId(rejected.raw);
    const lookup = this.parts.known;
    if (rejected.origin !== 'replay' || lookup === undefined) {
      this.keep(rejected, jobId);
      return;
    }
    // Unknown (Redis down) means keep: a second copy is better than none.
    const run = lookup(jobId)
      .catch(() => false)
      .then((known) => {
        if (!known) return this.keep(rejected, jobId);
        this.parts.counts.deadLetters.inc('replayed_known');
        this.parts.logger.debug({ shard: rejected.shard, jobId }, 'replayed bad frame already dead-lettered');
      })
      .finally(() => this.lookups.delete(run));
    this.lookups.add(run);
  };

  /** Resolves once every look-up started so far has ended. */
  async lookupsSettled(): Promise<void> {
    await Promise.allSettled([...this.lookups]);
  }

  private keep(rejected: RejectedFrame, jobId: string): void {
    this.parts.logger.warn({ shard: rejected.shard, field: rejected.field, reason: rejected.reason, origin: rejected.origin, jobId }, 'message rejected; dead-lettered');
    this.parts.cassandra.deadLetter({ shard: rejected.shard, reason: rejected.reason, field: rejected.field, raw: rejected.raw });
    this.jobs.push({
      queue: DEAD_LETTER_QUEUE,
      name: DEAD_LETTER_JOB_NAME,
      jobId,
      data: { shard: rejected.shard, source: 'ingestor', reason: rejected.reason, field: rejected.field ?? null, raw: rejected.raw, receivedAt: new Date().toISOString() },
    });
    this.parts.counts.deadLetters.inc('queued');
    this.parts.kick();
  }
}
