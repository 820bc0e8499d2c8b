/**
 * Writes enqueue units to Redis: every job of every shard queue, and the state hash, in ONE
 * MULTI/EXEC. So the hash (shard → last enqueued sequence) is never ahead of or behind the jobs,
 * even if the ingestor is killed mid-write: after a restart it resumes exactly after the last
 * job in Redis, and no message lands in two jobs. (Queue.addBulk uses a plain pipeline, which a
 * crash can cut in half; this is the same Job.addJob call it makes, inside a transaction.)
 * All queues share one prefix, a Redis Cluster hash tag, so the MULTI stays in one slot.
 *
 * A MULTI is not all-or-nothing: a command that fails inside EXEC (one job's add script erring)
 * does not stop the others. So the hash is not written by a plain HSET but by a script that runs
 * last in the same MULTI and moves the position only when every job of the transaction exists
 * (B: a failed add never leaves the position ahead of its job). The same script checks that each
 * field still holds at least what this process last saw confirmed, so a Redis that came back
 * empty or behind (restart without its data, failover to a lagging replica) is noticed on the
 * first write after it, and nothing of that write becomes the new position.
 */
import { Job, type Queue } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';
import { settlementQueueName } from '@settlement/domain';
import type { EnqueueUnit } from './enqueue-unit.js';
import { PositionLostError, type LostField } from './position-lost-error.js';

/**
 * KEYS[1] the state hash; KEYS[2..] the key of every job of the transaction.
 * ARGV[1] n; ARGV[2..1+2n] field, floor pairs; the rest field, value pairs to write.
 * Sequences are compared as decimal strings (Lua numbers are doubles, sequences are u64).
 */
const COMMIT_POSITION_LUA = `
local function below(stored, floor)
  if #stored ~= #floor then return #stored < #floor end
  return stored < floor
end
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local field = ARGV[2 + 2 * i]
  local floor = ARGV[3 + 2 * i]
  local stored = redis.call('HGET', KEYS[1], field) or '0'
  if below(stored, floor) then
    return redis.error_reply('INGEST_POSITION_LOST ' .. field .. ' ' .. stored .. ' ' .. floor)
  end
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return redis.error_reply('INGEST_JOB_MISSING ' .. KEYS[i])
  end
end
local first = 2 + 2 * n
if #ARGV >= first then redis.call('HSET', KEYS[1], unpack(ARGV, first)) end
return 1
`;

const JOB_ID_RANGE = /-(\d{1,20})-(\d{1,20})$/;

export class JobWriter {
  private readonly queues: ReadonlyMap<string, Queue>;
  /** State field → the highest value this process saw confirmed in Redis (the floor it checks). */
  private readonly confirmedSeqs = new Map<string, bigint>();
  /** Set when the connection came back: the next write first checks the floors on its own. */
  private verifyBeforeWrite = false;

  constructor(
    private readonly redis: Redis,
    queues: readonly Queue[],
    /** ingestPositionKey(prefix) */
    private readonly stateKey: string,
  ) {
    this.queues = new Map(queues.map((q) => [q.name, q]));
    let connectedOnce = redis.status === 'ready';
    redis.on('ready', () => {
      // Every `ready` after the first is a reconnection: the server may be another one now.
      if (connectedOnce) this.verifyBeforeWrite = true;
      connectedOnce = true;
    });
  }

  /** Loads BullMQ's scripts on the connection; call once Redis answers. */
  async ready(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.waitUntilReady()));
  }

  /** True once the connection came back since the floors were last checked. */
  get reconnected(): boolean {
    return this.verifyBeforeWrite;
  }

  /** The floors: what this process last saw confirmed in the state hash. */
  get confirmed(): ReadonlyMap<string, bigint> {
    return this.confirmedSeqs;
  }

  /** Takes the hash as read at start-up (or rewritten by a recovery) as what is confirmed. */
  setConfirmed(state: ReadonlyMap<string, bigint>): void {
    this.confirmedSeqs.clear();
    for (const [field, seq] of state) if (seq > 0n) this.confirmedSeqs.set(field, seq);
  }

  /**
   * Writes the units atomically, in order. Throws when Redis did not confirm every command;
   * throws PositionLostError (and writes no position) when the stored position went back.
   */
  async write(units: readonly EnqueueUnit[]): Promise<void> {
    const first = this.queues.values().next().value;
    if (first === undefined) throw new Error('JobWriter has no queues');
    if (this.verifyBeforeWrite) await this.verify();
    const client = await first.client;
    const multi = client.multi();
    const marks = new Map<string, string>();
    const jobKeys: string[] = [];
    const jobIds: string[] = [];
    for (const unit of units) {
      for (const spec of unit.jobs) {
        const queue = this.queues.get(spec.queue);
        if (queue === undefined) throw new Error(`no queue ${spec.queue} for job ${spec.jobId}`);
        const job = new Job(queue, spec.name, spec.data, { ...queue.defaultJobOptions, jobId: spec.jobId }, spec.jobId);
        // The per-command promise settles with EXEC; its error is read from EXEC's result below.
        job.addJob(multi).catch(() => undefined);
        jobKeys.push(queue.toKey(spec.jobId));
        jobIds.push(spec.jobId);
      }
      for (const [field, value] of Object.entries(unit.marks)) marks.set(field, value);
    }
    const floors = [...this.confirmedSeqs];
    const args: string[] = [String(floors.length)];
    for (const [field, seq] of floors) args.push(field, seq.toString());
    for (const [field, value] of marks) args.push(field, value);
    // BullMQ types its client's MULTI loosely; it is an ioredis one.
    (multi as unknown as ChainableCommander).eval(COMMIT_POSITION_LUA, 1 + jobKeys.length, this.stateKey, ...jobKeys, ...args);
    const results = await multi.exec();
    if (results === null) throw new Error('Redis discarded the MULTI transaction');
    const commit = results[results.length - 1]!;
    if (commit[0] !== null) {
      const lost = parseLost(commit[0].message);
      if (lost !== undefined) throw new PositionLostError([lost]);
    }
    for (let i = 0; i < jobIds.length; i++) {
      const [error, reply] = results[i]!;
      if (error) throw new Error(`job ${jobIds[i]} was not added: ${error.message}`, { cause: error });
      // BullMQ's add script answers a negative code instead of an error (-5: missing parent).
      if (typeof reply === 'number' && reply < 0) throw new Error(`job ${jobIds[i]} was not added: BullMQ code ${reply}`);
    }
    if (commit[0] !== null) throw commit[0];
    // What this process wrote is the new floor, also when it is lower: "global" steps back while
    // a message that arrived after its gap waits in a partial job.
    for (const [field, value] of marks) this.confirmedSeqs.set(field, BigInt(value));
  }

  /**
   * Checks that the state hash still holds at least what this process last saw confirmed.
   * Throws PositionLostError naming every field that went back.
   */
  async verify(): Promise<void> {
    const floors = [...this.confirmedSeqs];
    if (floors.length > 0) {
      const stored = await this.redis.hmget(this.stateKey, ...floors.map(([field]) => field));
      const lost: LostField[] = [];
      floors.forEach(([field, confirmedSeq], i) => {
        const storedSeq = BigInt(stored[i] ?? '0');
        if (storedSeq < confirmedSeq) lost.push({ field, storedSeq, confirmedSeq });
      });
      if (lost.length > 0) throw new PositionLostError(lost);
    }
    this.verifyBeforeWrite = false;
  }

  /** Replaces the state hash with `state` (after a recovery) and takes it as confirmed. */
  async resetState(state: ReadonlyMap<string, bigint>): Promise<void> {
    const fields: string[] = [];
    for (const [field, seq] of state) fields.push(field, seq.toString());
    const multi = this.redis.multi().del(this.stateKey);
    if (fields.length > 0) multi.hset(this.stateKey, ...fields);
    const results = await multi.exec();
    if (results === null) throw new Error('Redis discarded the MULTI transaction');
    for (const [error] of results) if (error) throw error;
    this.setConfirmed(state);
    this.verifyBeforeWrite = false;
  }

  /**
   * Removes the settlement jobs not yet taken whose first sequence is above their shard's
   * position: after a recovery the replay re-sends them, cut again from the position. (They
   * are jobs this process added to a Redis that had already lost the jobs before them.)
   * Returns the ids removed.
   */
  async removeJobsAbove(positions: ReadonlyMap<string, bigint>): Promise<string[]> {
    const removed: string[] = [];
    for (const [shard, position] of positions) {
      const queue = this.queues.get(settlementQueueName(shard));
      if (queue === undefined) continue;
      const jobs = await queue.getJobs(['wait', 'delayed', 'prioritized', 'paused']);
      for (const job of jobs) {
        const range = job.id === undefined ? null : JOB_ID_RANGE.exec(job.id);
        if (range === null || BigInt(range[1]!) <= position) continue;
        await job.remove();
        removed.push(job.id!);
      }
    }
    return removed;
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

function parseLost(message: string): LostField | undefined {
  const match = /INGEST_POSITION_LOST (\S+) (\d+) (\d+)/.exec(message);
  if (match === null) return undefined;
  return { field: match[1]!, storedSeq: BigInt(match[2]!), confirmedSeq: BigInt(match[3]!) };
}
