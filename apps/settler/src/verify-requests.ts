/**
 * Asks a shard's settler to check storage against the acknowledged chain with a verify job (in
 * the shard's one active slot, so it never races a settlement job): at a take-over, and whenever
 * a Cassandra node comes back (it may have come back without its last acknowledged batches, or
 * with only part of the last one) — so an idle shard is repaired without waiting for its next job.
 */
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { VERIFY_JOB_NAME, encodeVerifyJob, verifyJobId } from '@settlement/domain';
import type { ShardSettler } from './shard-settler.js';

export class VerifyRequests {
  private readonly requestedAtMs = new Map<string, number>();

  constructor(
    private readonly deps: {
      readonly queues: ReadonlyMap<string, Queue>;
      readonly settlers: ReadonlyMap<string, ShardSettler>;
      readonly logger: Logger;
      /** At most one request per shard in this interval: a verify job checks everything. */
      readonly intervalMs: number;
    },
  ) {}

  /** Adds a verify job to the shard's queue. */
  request(shard: string, why: string): void {
    const now = Date.now();
    if (now - (this.requestedAtMs.get(shard) ?? 0) < this.deps.intervalMs) return;
    this.requestedAtMs.set(shard, now);
    const { logger } = this.deps;
    void this.deps.queues
      .get(shard)!
      // With what this process saw acknowledged: the settler that takes the job may never have.
      .add(VERIFY_JOB_NAME, encodeVerifyJob(shard, this.deps.settlers.get(shard)!.acknowledged), { jobId: verifyJobId(shard, now) })
      .then(() => logger.info({ shard, why }, 'verify job added'))
      .catch((error: unknown) => logger.warn({ err: error, shard, why }, 'could not add a verify job'));
  }

  /** At start-up and at a take-over: a verify job only when storage is behind the completed jobs. */
  ifBehind(shard: string, why: string): void {
    const { logger } = this.deps;
    void this.deps.settlers
      .get(shard)!
      .storageBehindCompleted()
      .then((behind) => {
        if (behind) this.request(shard, `${why}: stored watermark below the completed jobs`);
      })
      .catch((error: unknown) => logger.warn({ err: error, shard, why }, 'could not compare storage with the completed jobs'));
  }
}
