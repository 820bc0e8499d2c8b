/**
 * Writes the ingestor's newest dead letters to Cassandra again, from the Redis dead-letter
 * queue that keeps every one of them. A Cassandra node with a periodic commit log (the default)
 * can come back from a crash without the rows it acknowledged in its last seconds; settlement
 * batches are applied again from the retained jobs, but a dead letter of the ingestor has no job
 * to re-apply it from (chaos seed 3: six bad frames lost that way). The row id is the letter's
 * identity, so writing it again is a no-op where it survived.
 */
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

export interface DeadLetterRestorerOptions {
  /** The dead-letter queue (its jobs wait until someone looks at them). */
  readonly queue: Queue;
  readonly repository: DeadLetterRepository;
  readonly intervalMs: number;
  /** Newest letters written again each time. */
  readonly newestMax: number;
  /** Only letters received within this many ms are written again. */
  readonly windowMs: number;
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

  /** Writes the newest letters again; returns how many. */
  async restoreOnce(): Promise<number> {
    const { queue, repository, newestMax, windowMs, logger } = this.options;
    const oldestMs = Date.now() - windowMs;
    const redis = (await queue.client) as unknown as Redis;
    // New jobs are pushed at the head of the wait list.
    const ids = await redis.lrange(queue.toKey('wait'), 0, newestMax - 1);
    let written = 0;
    for (let i = 0; i < ids.length; i += 16) {
      const datas = await Promise.all(ids.slice(i, i + 16).map((id) => redis.hget(queue.toKey(id), 'data')));
      await Promise.all(
        datas.map(async (data, j) => {
          const parsed = data === null ? undefined : storedLetter.safeParse(JSON.parse(data));
          if (parsed === undefined || !parsed.success) {
            logger.warn({ jobId: ids[i + j] }, 'dead-letter job unreadable; not written again');
            return;
          }
          const letter = parsed.data;
          const receivedAt = letter.receivedAt === undefined ? new Date() : new Date(letter.receivedAt);
          if (receivedAt.getTime() < oldestMs) return;
          await repository.add({ shard: letter.shard, source: 'ingestor', reason: letter.reason, field: letter.field ?? undefined, raw: letter.raw }, receivedAt);
          written += 1;
        }),
      );
    }
    return written;
  }
}
