/**
 * Writes dead letters and sequence gaps to Cassandra off the hot path: a bounded queue served by
 * a fixed number of concurrent writes. A write that fails, or a record that finds the queue
 * full, goes to the failed-trades file instead; never dropped, never blocking ingestion. Every
 * dead letter is also appended to the dead-letters file first (failed-file.ts says why).
 */
import type { DeadLetterRepository, SequenceGapRepository } from '@settlement/scylla';
import type { Logger } from '@settlement/runtime';
import type { FailedFile, JsonLinesFile } from './failed-file.js';

export interface CassandraWriterOptions {
  /** Writes in flight at once. */
  readonly concurrency: number;
  /** Records waiting; beyond this they go to the file at once. */
  readonly queueMax: number;
  /** Where every dead letter is appended before its Cassandra write (backup.dead_letters_file). */
  readonly deadLettersFile?: JsonLinesFile;
}

export interface IngestorDeadLetter {
  readonly shard: string;
  readonly reason: string;
  readonly field: string | undefined;
  readonly raw: string;
}

export interface IngestorGap {
  readonly shard: string;
  readonly fromSeq: bigint;
  readonly toSeq: bigint;
}

type Task = { readonly kind: 'dead_letter'; readonly record: IngestorDeadLetter } | { readonly kind: 'sequence_gap'; readonly record: IngestorGap };

export class CassandraWriter {
  private readonly queue: Task[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];
  /** Records written to Cassandra / to the file. */
  stored = 0;
  fellBack = 0;

  constructor(
    private readonly deadLetters: DeadLetterRepository,
    private readonly gaps: SequenceGapRepository,
    private readonly failed: FailedFile,
    private readonly options: CassandraWriterOptions,
    private readonly logger: Logger,
  ) {}

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  deadLetter(record: IngestorDeadLetter): void {
    const file = this.options.deadLettersFile;
    try {
      file?.appendLine({ kind: 'dead_letter', at: new Date().toISOString(), ...record });
    } catch (error) {
      // Cassandra and the Redis queue still get it; only the copy that outlives both is missing.
      this.logger.error({ err: error, shard: record.shard, file: file?.file }, 'dead letter not appended to the dead-letters file');
    }
    this.submit({ kind: 'dead_letter', record });
  }

  gap(record: IngestorGap): void {
    this.submit({ kind: 'sequence_gap', record });
  }

  /** Waits until everything submitted is written (or, after `timeoutMs`, puts the rest in the file). */
  async drain(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idle.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    for (const task of this.queue.splice(0)) this.fallBack(task, new Error('shutdown before Cassandra accepted it'));
  }

  private submit(task: Task): void {
    if (this.queue.length >= this.options.queueMax) {
      this.fallBack(task, new Error(`Cassandra write queue full (${this.options.queueMax})`));
      return;
    }
    this.queue.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.options.concurrency && this.queue.length > 0) {
      const task = this.queue.shift()!;
      this.inFlight += 1;
      void this.write(task).finally(() => {
        this.inFlight -= 1;
        this.pump();
        if (this.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  private async write(task: Task): Promise<void> {
    try {
      if (task.kind === 'dead_letter') {
        await this.deadLetters.add({ ...task.record, source: 'ingestor' });
      } else {
        await this.gaps.record({ ...task.record, source: 'ingestor' });
      }
      this.stored += 1;
    } catch (error) {
      this.fallBack(task, error);
    }
  }

  private fallBack(task: Task, error: unknown): void {
    try {
      this.failed.append(task.kind, { ...task.record }, error);
      this.fellBack += 1;
      this.logger.error({ err: error, kind: task.kind, shard: task.record.shard, file: this.failed.file }, 'Cassandra write failed; record kept in the failed-trades file');
    } catch (fileError) {
      // Both Cassandra and the disk failed: the log line is the only copy left.
      this.logger.fatal({ err: fileError, kind: task.kind, record: task.record }, 'record could not be written anywhere');
    }
  }
}
