/**
 * Re-sends the range a halted settler waits for (libs/domain halted-shards.ts). A shard halts
 * when its chain has a hole no job in Redis holds: storage lost acknowledged batches older than
 * the retained jobs, or Redis came back empty. The settler records the range; this asks the
 * engine's replay endpoint for the shard's messages in it and adds them as jobs that continue
 * the chain from `afterSeq`. The settler, still holding the job that found the hole, finds them
 * in the wait list and applies them first; row versions make anything already applied a no-op.
 * Nothing is skipped: a range the engine cannot re-send stays halted, and is logged as such.
 *
 * An entry can outlive its halt: the settler that recorded it may have died or lost the shard
 * while halted, and the settler that then repaired the chain never halted itself, so nobody
 * removes it. Re-sending it every `retryAfterMs` forever is harmless (row versions) but not
 * free (chaos seed 2: 3,850 funding messages every 30 s until the end). With `readWatermarks`,
 * a range whose shard's stored watermark has reached its end is not re-sent: its entry is
 * removed, only if it still holds the value read (a settler halting again records a new one).
 *
 * A range marked `reapply` is the batch that wrote the shard's watermark, which Redis lost
 * while storage may hold it only in part (settle-step.ts goneWatermarkJob): it is re-sent
 * although the watermark has reached its end, and its settler applies it again from its start.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  FUNDING_SHARD,
  SETTLE_JOB_NAME,
  decodeHaltedShardRange,
  encodeSettlementJob,
  engineSequence,
  haltedShardsKey,
  parseWireMessage,
  settlementJobId,
  type HaltedShardRange,
  type MarketCatalog,
  type SettlementMessage,
} from '@settlement/domain';
import type { ReplayClient } from './replay-client.js';

export interface RedriveJob {
  readonly jobId: string;
  readonly prevLastSeq: bigint;
  readonly messages: SettlementMessage[];
}

/**
 * The jobs that re-send `messages` (the shard's, in sequence order, after `afterSeq`): at most
 * `maxMessages` each, chained from `afterSeq`. Their ids carry a suffix, so that a re-sent range
 * cut like an earlier job never collides with that job's id (BullMQ would ignore the add).
 */
export function redriveJobs(shard: string, afterSeq: bigint, messages: readonly SettlementMessage[], maxMessages: number, suffix: string): RedriveJob[] {
  const jobs: RedriveJob[] = [];
  let prev = afterSeq;
  for (let i = 0; i < messages.length; i += maxMessages) {
    const slice = messages.slice(i, i + maxMessages);
    for (const m of slice) if (m.shard !== shard || m.seq <= prev) throw new Error(`redrive of ${shard}: message at seq ${m.seq} (${m.shard}) does not continue ${prev}`);
    const first = slice[0]!.seq;
    const last = slice[slice.length - 1]!.seq;
    jobs.push({ jobId: `${settlementJobId(shard, first, last)}-redrive${suffix}`, prevLastSeq: prev, messages: slice });
    prev = last;
  }
  return jobs;
}

export interface RedriverOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly queues: ReadonlyMap<string, Queue>;
  readonly replay: ReplayClient | undefined;
  readonly catalog: MarketCatalog;
  readonly sequenceScope: 'global' | 'per_symbol';
  readonly jobMessagesMax: number;
  /** How often the halted hash is read, ms. */
  readonly pollIntervalMs: number;
  /** A range is asked for again only after this long, ms (the settler may still be applying it). */
  readonly retryAfterMs: number;
  /**
   * The shards' stored watermarks (Cassandra). When given, a range the shard's watermark has
   * reached is not re-sent and its entry is removed; when absent, or when the read fails, every
   * range is re-sent (re-sending is safe, skipping is not).
   */
  readonly readWatermarks?: () => Promise<ReadonlyMap<string, bigint>>;
  readonly logger: Logger;
}

/** HDEL of the field only while it still holds the value read (a new halt is never removed). */
const DELETE_IF_UNCHANGED = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`;

export class Redriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** shard → the range last re-sent and when. */
  private readonly sent = new Map<string, { key: string; atMs: number }>();

  constructor(private readonly options: RedriverOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.poll()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, 'redrive poll failed'))
        .finally(() => (this.running = undefined));
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** Reads the halted ranges and re-sends each one not re-sent recently. */
  async poll(): Promise<void> {
    const { redis, prefix, logger, retryAfterMs } = this.options;
    const halted = await redis.hgetall(haltedShardsKey(prefix));
    let watermarks: ReadonlyMap<string, bigint> | null | undefined;
    for (const [shard, value] of Object.entries(halted)) {
      let range: HaltedShardRange;
      try {
        range = decodeHaltedShardRange(value);
      } catch (error) {
        logger.error({ err: error, shard }, 'halted-shard range unreadable; ignored');
        continue;
      }
      const key = `${range.afterSeq}-${range.throughSeq}`;
      const last = this.sent.get(shard);
      if (last !== undefined && last.key === key && Date.now() - last.atMs < retryAfterMs) continue;
      // Read once per poll, and only when a range is due.
      if (watermarks === undefined) watermarks = await this.watermarks();
      const stored = watermarks?.get(shard);
      // A `reapply` range is the batch that wrote the watermark: it is due until the watermark is past it.
      if (stored !== undefined && (range.reapply === true ? stored > range.throughSeq : stored >= range.throughSeq)) {
        const removed = await redis.eval(DELETE_IF_UNCHANGED, 1, haltedShardsKey(prefix), shard, value);
        this.sent.delete(shard);
        logger.info({ shard, afterSeq: range.afterSeq, throughSeq: range.throughSeq, watermark: stored, removed: removed === 1 }, 'halted range already settled (its settler stopped or moved on without clearing it): not re-sent, entry removed');
        continue;
      }
      this.sent.set(shard, { key, atMs: Date.now() });
      await this.redrive(shard, range);
    }
  }

  /** The stored watermarks; null when there is no reader or the read failed (then everything is re-sent). */
  private async watermarks(): Promise<ReadonlyMap<string, bigint> | null> {
    if (this.options.readWatermarks === undefined) return null;
    try {
      return await this.options.readWatermarks();
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not read the shard watermarks; halted ranges re-sent without checking them');
      return null;
    }
  }

  private async redrive(shard: string, range: HaltedShardRange): Promise<void> {
    const { replay, logger, queues } = this.options;
    const fields = { shard, afterSeq: range.afterSeq, throughSeq: range.throughSeq };
    const queue = queues.get(shard);
    if (queue === undefined) return;
    if (replay === undefined) {
      logger.error(fields, 'shard halted on a range no job holds, and there is no replay endpoint (zmq.replay_endpoint) to re-send it: re-send it from the engine');
      return;
    }
    const messages = await this.fetch(shard, range);
    const last = messages.at(-1)?.seq;
    if (last === undefined || last < range.throughSeq) {
      logger.error({ ...fields, received: messages.length, reachedSeq: last ?? range.afterSeq }, 'the engine replay does not hold the whole range a halted shard waits for; it stays halted');
      if (messages.length === 0) return;
    }
    const jobs = redriveJobs(shard, range.afterSeq, messages, this.options.jobMessagesMax, `.${Date.now()}`);
    await queue.addBulk(jobs.map((job) => ({ name: SETTLE_JOB_NAME, data: encodeSettlementJob(shard, job.prevLastSeq, job.messages), opts: { jobId: job.jobId } })));
    logger.warn({ ...fields, messages: messages.length, jobs: jobs.length }, 'range a halted shard waits for re-sent from the engine replay');
  }

  /** The shard's messages after `afterSeq` through `throughSeq`, paged from the engine's replay. */
  private async fetch(shard: string, range: HaltedShardRange): Promise<SettlementMessage[]> {
    const { replay, catalog, sequenceScope } = this.options;
    // The engine numbers trades with one counter across symbols under the global scope.
    const stream = shard !== FUNDING_SHARD && sequenceScope === 'global' ? 'global' : shard;
    const out: SettlementMessage[] = [];
    let from = range.afterSeq + 1n;
    for (;;) {
      const frames = await replay!.page(stream, from);
      let maxSeen = from - 1n;
      for (const frame of frames) {
        const parsed = parseWireMessage(frame, catalog);
        // A bad frame was dead-lettered when it first arrived; it has no place in the chain.
        if (!parsed.ok) continue;
        const seq = engineSequence(parsed.message);
        if (seq > maxSeen) maxSeen = seq;
        // Unnumbered funding events (sequence_id 0) cannot be asked for again: see README.
        if (parsed.message.shard !== shard || seq <= range.afterSeq || seq > range.throughSeq) continue;
        if (out.length > 0 && seq <= out[out.length - 1]!.seq) continue;
        out.push({ ...parsed.message, seq } as SettlementMessage);
      }
      if (frames.length < replay!.pageMessages || maxSeen >= range.throughSeq || maxSeen < from) return out;
      from = maxSeen + 1n;
    }
  }
}
