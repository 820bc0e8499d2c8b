/**
 * A stale writer's late batch must lose to the newer writer's batches (DESIGN §3, "Write
 * timestamps"). Found by the chaos run: a settler SIGSTOPped in the middle of a job (after
 * reading the shard state, before writing) woke up after another settler had taken the job over
 * and settled it and the next ones; its late batch then carried a newer timestamp than theirs,
 * because each batch's timestamp is max(previous + 1, wall clock at write time). The shard
 * watermark went back (seed 2: the next job's chain check then halted three shards for good) and
 * balance rows went back to the stale job's values; a row touched again later was computed from
 * that stale value once a settler reloaded it, so the newer job's effects were lost for good
 * (seed 1: funding events 2722-2723 missing from one row, conservation broken).
 *
 * Reproduced here without timing luck: two ShardSettlers of one shard in one process, the first
 * held inside its balance-row read (where a SIGSTOP can catch it) while the second settles the
 * same job and the next; then the first is let go.
 */
import type { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_JOB_NAME, encodeSettlementJob, type BalanceRow, type BalanceRowKey } from '@settlement/domain';
import type { BalanceRepository } from '@settlement/scylla';
import type { ShardSettler } from '../src/shard-settler.js';
import { expectBalances, inProcessShardSettler, openTestBed, usersOf, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs, type StreamJob } from './stream-generator.js';

const SHARD = 'btc_usdt';
let bed: TestBed;
let queue: Queue;

beforeAll(async () => {
  bed = await openTestBed();
  queue = bed.queues.get(SHARD)!;
});

afterAll(async () => {
  await bed?.close();
});

/** A gate: `wait()` blocks until `open()`; `reached` resolves when something waits. */
function gate(): { wait: () => Promise<void>; open: () => void; reached: Promise<void> } {
  let open!: () => void;
  let reach!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const reached = new Promise<void>((resolve) => (reach = resolve));
  return {
    wait: () => {
      reach();
      return opened;
    },
    open,
    reached,
  };
}

/** A settler of SHARD as startSettler builds it; `balances` may be wrapped to hold its reads. */
function shardSettler(balances: BalanceRepository): ShardSettler {
  return inProcessShardSettler({ ks: bed.ks, catalog: bed.catalog, queue, shard: SHARD, balances });
}

async function add(job: StreamJob): Promise<Job> {
  return queue.add(SETTLE_JOB_NAME, encodeSettlementJob(job.shard, job.prevLastSeq, job.messages), { jobId: job.jobId });
}

describe('a stale settler waking up mid-job', () => {
  // Fixed by reading the clock once when the job starts, before the shard state (shard-settler.ts).
  it('loses to the settler that took its job over: watermark and balances stay at the newer jobs', async () => {
    const catalog = bed.catalog;
    const stream = generateStream({ catalog, messages: 1_500, users: 40, seed: 21 });
    const messages = stream.messages.filter((m) => m.shard === SHARD);
    const jobs = toJobs(messages, 20).slice(0, 3);
    expect(jobs).toHaveLength(3);
    const [j1, j2, j3] = await Promise.all(jobs.map(add));

    const repository = bed.balances;
    const held = gate();
    let holding = false;
    const heldBalances = Object.create(repository) as BalanceRepository;
    heldBalances.loadShardRows = async (shard: string, keys: readonly { userId: bigint; assetId: number }[]): Promise<Map<BalanceRowKey, BalanceRow>> => {
      if (holding) await held.wait();
      return repository.loadShardRows(shard, keys);
    };
    const stale = shardSettler(heldBalances);
    const fresh = shardSettler(repository);

    await fresh.process(j1!);
    // The stale one starts job 2: it reads the shard state and is caught reading balance rows.
    holding = true;
    const staleRun = stale.process(j2!);
    await held.reached;
    // Meanwhile the job is handed over: the fresh settler settles job 2 and job 3.
    await fresh.process(j2!);
    await fresh.process(j3!);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The stale one wakes up and finishes its copy of job 2.
    held.open();
    await staleRun;

    const watermark = await bed.watermarks.get(SHARD);
    expect(watermark?.lastSeq).toBe(jobs[2]!.messages.at(-1)!.seq);
    const settled = jobs.flatMap((j) => j.messages);
    await expectBalances(repository, expectedBalances(settled, catalog.feeAccountUserId), usersOf(settled, catalog.feeAccountUserId));
  }, 60_000);
});
