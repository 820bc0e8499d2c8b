/**
 * What one settler knows of its shard's stored state: the state as of its last read or
 * acknowledged write (trusted only while nothing could have changed it behind this settler),
 * the highest watermark it saw acknowledged (never forgotten: storage found below it lost
 * batches), and its claim on the shard in Redis (how it learns another settler wrote between
 * two of its jobs).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { shardEpochKey, shardWriterKey } from '@settlement/domain';
import type { WatermarkRepository } from '@settlement/scylla';
import type { SettlerMetrics } from './metrics.js';
import type { ShardState } from './shard-settler.js';
import type { StorageWatch } from './storage-watch.js';

export interface ShardKnowledgeDeps {
  readonly shard: string;
  readonly queue: Queue;
  /** BullMQ prefix (a hash tag); the claim is kept under it. */
  readonly redisPrefix: string;
  readonly watermarks: WatermarkRepository;
  /** Consistency of the watermark read: the writes' (read-your-writes, see consistency.ts). */
  readonly consistency: number;
  readonly storage: StorageWatch;
  readonly metrics: SettlerMetrics;
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export class ShardKnowledge {
  /** This settler's identity: its claim on the shard, and the owner of the fencing epochs it takes. */
  readonly token = `${hostname()}:${process.pid}:${randomUUID()}`;
  private readonly claimKey: string;
  /** The Redis copy of the shard's fencing epoch (ShardFence raises it with every epoch taken). */
  private readonly epochKey: string;
  /** Watermark as this settler last read or wrote it (status and metrics only). */
  private known: ShardState | undefined;
  private stored: ShardState | undefined;
  /** StorageWatch generation when `stored` was read or written: older means read it again. */
  private storedGeneration = -1;
  private acknowledged = 0n;
  /**
   * The job whose batch this settler last wrote and saw acknowledged, or applied again (or found
   * gone) after a doubt, at that StorageWatch generation: storage holds its batch whole unless a
   * storage event or another writer came since.
   */
  private checkedWatermarkJob: { readonly jobId: string; readonly generation: number } | undefined;

  constructor(private readonly deps: ShardKnowledgeDeps) {
    this.claimKey = shardWriterKey(deps.redisPrefix, deps.shard);
    this.epochKey = shardEpochKey(deps.redisPrefix, deps.shard);
  }

  get lastSeq(): bigint | undefined {
    return this.known?.lastSeq;
  }

  /** Highest watermark this settler saw acknowledged (0 before its first batch). */
  get acknowledgedSeq(): bigint {
    return this.acknowledged;
  }

  /** The remembered state, whether trusted or not (for the prefetch's bounds). */
  get remembered(): ShardState | undefined {
    return this.stored;
  }

  /** Forgets the remembered state: the next job reads storage. */
  forget(): void {
    this.stored = undefined;
  }

  /**
   * The remembered state, when it still stands for the stored one: no Cassandra error or node
   * event since it was read or written (storage can lose acknowledged batches), no other settler
   * claimed the shard since (each claims it before its first write, and a job runs only while
   * BullMQ gives it the shard's one active slot), and none took an epoch since `heldEpoch`, this
   * settler's. The claim alone does not say the last: with Redis back empty, a settler with a job
   * in hand may claim first, the lease holder after it, and the first take its epoch after both;
   * its batches then win over every one of the holder's (chaos run, 4 Dec, seed 1007: the holder
   * trusted what it remembered, and the shard made no progress). Any doubt (Redis error) means no.
   */
  async trusted(heldEpoch: bigint | undefined): Promise<ShardState | undefined> {
    if (this.stored === undefined || this.storedGeneration !== this.deps.storage.generation || heldEpoch === undefined) return undefined;
    // Read after a doubt, and the job that wrote its watermark not applied again yet (a verify
    // job that found it gone from Redis waits for the engine to re-send it): still in doubt.
    if (this.stored.lastJobId !== undefined && !this.watermarkJobChecked(this.stored)) return undefined;
    try {
      const [claim, epoch] = await (await this.redis()).mget(this.claimKey, this.epochKey);
      return claim === this.token && epoch === heldEpoch.toString() ? this.stored : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether the job that wrote `state`'s watermark was applied again since the last storage
   * event (settle-step.ts, "reapply-watermark-job").
   */
  watermarkJobChecked(state: ShardState): boolean {
    const checked = this.checkedWatermarkJob;
    return checked !== undefined && checked.jobId === state.lastJobId && checked.generation === this.deps.storage.generation;
  }

  /** The watermark's job was applied again (or is gone) while the StorageWatch was at `generation`. */
  noteWatermarkJobChecked(jobId: string, generation: number): void {
    this.checkedWatermarkJob = { jobId, generation };
  }

  /** Another settler claimed the shard since: what it wrote last is not known whole. */
  forgetWatermarkJobCheck(): void {
    this.checkedWatermarkJob = undefined;
  }

  /**
   * Claims the shard for this settler. Resolves to the previous holder (null: none, or Redis lost
   * it) and the shard's epoch as Redis has it (null: not recorded, or Redis lost it).
   */
  async claim(): Promise<{ readonly previous: string | null; readonly epoch: string | null }> {
    const redis = await this.redis();
    const [previous, epoch] = await Promise.all([redis.set(this.claimKey, this.token, 'GET'), redis.get(this.epochKey)]);
    return { previous, epoch };
  }

  /** Reads the watermark and remembers it. */
  async read(): Promise<ShardState> {
    const generation = this.deps.storage.generation;
    const wm = await this.deps.watermarks.get(this.deps.shard, { consistency: this.deps.consistency });
    const state: ShardState = wm === undefined
      ? { lastSeq: 0n, writeTs: 0n, batchCount: 0n, exists: false, maxTradeId: undefined }
      : { lastSeq: wm.lastSeq, writeTs: wm.writeTs, batchCount: wm.batchCount, exists: true, maxTradeId: wm.maxTradeId, lastJobId: wm.lastJobId, writtenAtMs: wm.updatedAt?.getTime() };
    this.note(state, generation);
    return state;
  }

  /**
   * After an acknowledged batch of job `jobId`, written while the StorageWatch was at `generation`.
   * `reachesWatermark`: the batch ends at the watermark it wrote, so storage holds the job's part
   * up to it whole; false for a chunk of a job applied again from its start that ends below the
   * watermark it found (the rest of that job's batch is still in doubt).
   */
  noteWritten(state: ShardState, generation: number, jobId: string, reachesWatermark = true): void {
    this.note(state, generation);
    this.checkedWatermarkJob = reachesWatermark ? { jobId, generation } : undefined;
    this.acknowledged = maxBig(this.acknowledged, state.lastSeq);
  }

  private note(state: ShardState, generation: number): void {
    this.stored = state;
    this.storedGeneration = generation;
    if (this.known === undefined || state.lastSeq >= this.known.lastSeq) this.known = state;
    this.deps.metrics.lastSeq.set({ shard: this.deps.shard }, Number(state.lastSeq));
  }

  async redis(): Promise<Redis> {
    return (await this.deps.queue.client) as unknown as Redis;
  }
}
