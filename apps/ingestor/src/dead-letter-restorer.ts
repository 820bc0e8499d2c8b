/**
 * Writes the ingestor's newest dead letters to Cassandra again, from the Redis dead-letter
 * queue that keeps every one of them. A Cassandra node with a periodic commit log (the default)
 * can come back from a crash without the rows it acknowledged in its last seconds; settlement
 * batches are applied again from the retained jobs, but a dead letter of the ingestor has no job
 * to re-apply it from (chaos seed 3: six bad frames lost that way). The row id is the letter's
 * identity, so writing it again is a no-op where it survived.
 *
 * Redis may have lost the queue as well (it came back empty after the same crash): the letters
 * are also read from the tail of the ingestor's dead-letters file (backup.dead_letters_file,
 * failed-file.ts), which a crash of no process loses.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DeadLetterRepository } from '@settlement/scylla';

const storedLetter = z.object({
  shard: z.string().min(1),
  reason: z.string(),
  field: z.string().nullable().optional(),
  raw: z.string(),
  receivedAt: z.string().optional(),
});

type StoredLetter = z.infer<typeof storedLetter>;

/** How much of the dead-letters file's end is read for its newest letters. */
const FILE_TAIL_BYTES = 1 << 20;

export interface DeadLetterRestorerOptions {
  /** The dead-letter queue (its jobs wait until someone looks at them). */
  readonly queue: Queue;
  readonly repository: DeadLetterRepository;
  readonly intervalMs: number;
  /** Newest letters written again each time. */
  readonly newestMax: number;
  /** Only letters received within this many ms are written again. */
  readonly windowMs: number;
  /** The dead-letters file, whose newest lines are written again too. */
  readonly file?: string;
  readonly logger: Logger;
}

export class DeadLetterRestorer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: DeadLetterRestorerOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.restoreOnce()
        .catch((error: unknown) => this.options.logger.debug({ err: error }, 'dead letters not written again this time (Cassandra or Redis unreachable)'))
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** Writes the newest letters again (from the queue, then the file); returns how many. */
  async restoreOnce(): Promise<number> {
    const { newestMax, windowMs, logger } = this.options;
    const oldestMs = Date.now() - windowMs;
    const letters = new Map<string, { letter: StoredLetter; receivedAt: Date }>();
    const take = (data: unknown, where: string): void => {
      const parsed = storedLetter.safeParse(data);
      if (!parsed.success) {
        logger.warn({ where }, 'dead letter unreadable; not written again');
        return;
      }
      const letter = parsed.data;
      const receivedAt = letter.receivedAt === undefined ? new Date() : new Date(letter.receivedAt);
      if (receivedAt.getTime() >= oldestMs && !letters.has(letter.raw)) letters.set(letter.raw, { letter, receivedAt });
    };
    for (const [id, data] of await this.queuedLetters()) take(data === null ? undefined : JSON.parse(data), `dead-letter job ${id}`);
    for (const line of this.fileTail(newestMax)) take(line, 'dead-letters file');
    let written = 0;
    const all = [...letters.values()];
    for (let i = 0; i < all.length; i += 16) {
      await Promise.all(
        all.slice(i, i + 16).map(async ({ letter, receivedAt }) => {
          await this.options.repository.add({ shard: letter.shard, source: 'ingestor', reason: letter.reason, field: letter.field ?? undefined, raw: letter.raw }, receivedAt);
          written += 1;
        }),
      );
    }
    return written;
  }

  /** The newest jobs of the dead-letter queue: id → data. */
  private async queuedLetters(): Promise<[string, string | null][]> {
    const { queue, newestMax } = this.options;
    const redis = (await queue.client) as unknown as Redis;
    // New jobs are pushed at the head of the wait list.
    const ids = await redis.lrange(queue.toKey('wait'), 0, newestMax - 1);
    const datas = await Promise.all(ids.map((id) => redis.hget(queue.toKey(id), 'data')));
    return ids.map((id, i) => [id, datas[i] ?? null]);
  }

  /** The last `linesMax` dead letters of the file (its last FILE_TAIL_BYTES), as receivedAt-stamped letters. */
  private fileTail(linesMax: number): unknown[] {
    const file = this.options.file;
    if (file === undefined || !existsSync(file)) return [];
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const start = Math.max(0, size - FILE_TAIL_BYTES);
      const buffer = Buffer.alloc(size - start);
      readSync(fd, buffer, 0, buffer.length, start);
      const lines = buffer.toString('utf8').split('\n');
      // A tail that starts mid-file starts mid-line; a torn last line (a kill mid-append) is skipped below.
      if (start > 0) lines.shift();
      const out: unknown[] = [];
      for (const line of lines.slice(-linesMax - 1)) {
        if (!line.trim()) continue;
        try {
          const entry = JSON.parse(line) as { kind?: unknown; at?: unknown };
          if (entry.kind === 'dead_letter') out.push({ ...entry, receivedAt: entry.at });
        } catch {
          // The torn last line: its letter is in Cassandra or the queue as well.
        }
      }
      return out;
    } finally {
      closeSync(fd);
    }
  }
}
