/**
 * Writes enqueue units to Redis: every job of every shard queue, and the state hash, in ONE
 * MULTI/EXEC. So the hash (shard → last enqueued sequence) is never ahead of or behind the jobs,
 * even if the ingestor is killed mid-write: after a restart it resumes exactly after the last
 * job in Redis, and no message lands in two jobs. (Queue.addBulk uses a plain pipeline, which a
 * crash can cut in half; this is the same Job.addJob call it makes, inside a transaction.)
 * All queues share one prefix, a Redis Cluster hash tag, so the MULTI stays in one slot.
 */
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { EnqueueUnit } from './enqueue-unit.js';

export class JobWriter {
  private readonly queues: ReadonlyMap<string, Queue>;

  constructor(
    private readonly redis: Redis,
    queues: readonly Queue[],
    /** `${prefix}:ingest:last-enqueued` */
    private readonly stateKey: string,
  ) {
    this.queues = new Map(queues.map((q) => [q.name, q]));
  }

  /** Loads BullMQ's scripts on the connection; call once Redis answers. */
  async ready(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.waitUntilReady()));
  }

  /** Writes the units atomically, in order. Throws when Redis did not confirm the transaction. */
  async write(units: readonly EnqueueUnit[]): Promise<void> {
    const first = this.queues.values().next().value;
    if (first === undefined) throw new Error('JobWriter has no queues');
    const client = await first.client;
    const multi = client.multi();
    const marks: Record<string, string> = {};
    for (const unit of units) {
      for (const spec of unit.jobs) {
        const queue = this.queues.get(spec.queue);
        if (queue === undefined) throw new Error(`no queue ${spec.queue} for job ${spec.jobId}`);
        const job = new Job(queue, spec.name, spec.data, { ...queue.defaultJobOptions, jobId: spec.jobId }, spec.jobId);
        // The per-command promise settles with EXEC; its error is read from EXEC's result below.
        job.addJob(multi).catch(() => undefined);
      }
      Object.assign(marks, unit.marks);
    }
    if (Object.keys(marks).length > 0) multi.hset(this.stateKey, marks);
    const results = await multi.exec();
    if (results === null) throw new Error('Redis discarded the MULTI transaction');
    for (const [error] of results) if (error) throw error;
  }

  /** The state hash as stored (field → decimal string). */
  async readState(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.stateKey);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }
}
