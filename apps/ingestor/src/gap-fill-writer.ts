/**
 * Marks a recorded gap as (partly) filled in Cassandra when one of its messages arrives after
 * all: sequence_gaps.filled[seq] = settled | dead_letter. Rare (a message later than the
 * reorder window and any replay), so one write at a time off the hot path; a write that fails
 * goes to the failed-trades file, like every other record Cassandra did not take.
 */
import type { SequenceGapRepository } from '@settlement/scylla';
import type { Logger } from '@settlement/runtime';
import type { FailedFile } from './failed-file.js';
import type { GapFill } from './pipeline.js';

export class GapFillWriter {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly gaps: SequenceGapRepository,
    private readonly failed: FailedFile,
    private readonly logger: Logger,
  ) {}

  mark(fill: GapFill): void {
    const run = this.gaps
      .markFilled(fill.stream, fill.gap.fromSeq, fill.seq, fill.outcome)
      .catch((error: unknown) => {
        const record = { shard: fill.stream, fromSeq: fill.gap.fromSeq, toSeq: fill.gap.toSeq, seq: fill.seq, outcome: fill.outcome };
        try {
          this.failed.append('sequence_gap_filled', record, error);
          this.logger.error({ err: error, shard: fill.stream, seq: fill.seq, file: this.failed.file }, 'gap fill not written to Cassandra; kept in the failed-trades file');
        } catch (fileError) {
          this.logger.fatal({ err: fileError, record }, 'gap fill could not be written anywhere');
        }
      })
      .finally(() => this.pending.delete(run));
    this.pending.add(run);
  }

  /** Waits for the writes in flight (shutdown). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
