/**
 * The settlement jobs Redis still holds for a shard, read for chain recovery: completed jobs
 * (retained by age and count for this, see createSettlementQueue), waiting ones (re-sent after
 * Redis lost its tail), failed and delayed ones. Job ids name the range they cover
 * (`<shard>-<first>-<last>`), so only the jobs around the missing range are read.
 */
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SETTLE_JOB_NAME, decodeSettleJobLenient, parseSettlementJobId, type RetainedJob, type SettleJobDecode } from '@settlement/domain';

/** A retained job loaded to be applied. */
export interface LoadedJob {
  readonly job: Job;
  readonly decoded: Extract<SettleJobDecode, { ok: true }>;
}

const PREV_LAST_SEQ_IN_JSON = /"prevLastSeq":"(\d{1,20})"/;

export class RetainedJobs {
  constructor(
    private readonly queue: Queue,
    private readonly shard: string,
    /** Job ids read from each of the queue's lists. */
    private readonly scanJobsMax: number,
  ) {}

  /** Jobs that cover some sequence after `afterSeq` and start at or before `throughSeq`. */
  async around(afterSeq: bigint, throughSeq: bigint): Promise<RetainedJob[]> {
    const redis = await this.redis();
    const key = (name: string) => this.queue.toKey(name);
    const n = this.scanJobsMax - 1;
    const lists = await Promise.all([
      redis.zrevrange(key('completed'), 0, n),
      // Lists take new jobs at the head: the oldest, nearest the watermark, are at the tail.
      redis.lrange(key('wait'), -this.scanJobsMax, -1),
      redis.lrange(key('paused'), -this.scanJobsMax, -1),
      redis.zrange(key('failed'), 0, n),
      redis.zrange(key('delayed'), 0, n),
    ]);
    const ids = new Set<string>();
    for (const list of lists) {
      for (const id of list) {
        const range = parseSettlementJobId(id);
        if (range !== undefined && range.shard === this.shard && range.lastSeq > afterSeq && range.firstSeq <= throughSeq) ids.add(id);
      }
    }
    const out: RetainedJob[] = [];
    const ordered = [...ids];
    const datas = ordered.length === 0 ? [] : await Promise.all(ordered.map((id) => redis.hget(key(id), 'data')));
    ordered.forEach((jobId, i) => {
      const prev = datas[i] === null || datas[i] === undefined ? null : PREV_LAST_SEQ_IN_JSON.exec(datas[i]!);
      if (prev !== null) out.push({ jobId, prevLastSeq: BigInt(prev[1]!), lastSeq: parseSettlementJobId(jobId)!.lastSeq });
    });
    return out;
  }

  /** The highest sequence of the newest completed settlement jobs: acknowledged, so storage must hold it. */
  async highestCompletedSeq(newestJobs: number): Promise<bigint | undefined> {
    const redis = await this.redis();
    let max: bigint | undefined;
    for (const id of await redis.zrevrange(this.queue.toKey('completed'), 0, newestJobs - 1)) {
      const range = parseSettlementJobId(id);
      if (range !== undefined && range.shard === this.shard && (max === undefined || range.lastSeq > max)) max = range.lastSeq;
    }
    return max;
  }

  /** The job, decoded; undefined when it is gone or cannot be read (then the chain halts there). */
  async load(jobId: string): Promise<LoadedJob | undefined> {
    const job = await Job.fromId(this.queue, jobId);
    if (job === undefined || job.name !== SETTLE_JOB_NAME) return undefined;
    const decoded = decodeSettleJobLenient(job.data, this.shard);
    return decoded.ok ? { job, decoded } : undefined;
  }

  private async redis(): Promise<Redis> {
    return (await this.queue.client) as unknown as Redis;
  }
}
