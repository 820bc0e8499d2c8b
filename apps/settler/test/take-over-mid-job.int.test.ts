/**
 * A settler that wins its shard's lease back while one of its jobs is still in hand (it kept
 * the job when the lease went, as a settler does) must not empty the cache under that job.
 *
 * Seen in a chaos run (4 Dec, seed 606): the lease came back while the job in hand was reading
 * the balance rows it had not cached; the take-over emptied the cache meanwhile, and the plan,
 * which had counted on the cached rows, found them nowhere and settled those users as if they
 * had no balance: their rows lost every earlier effect (history intact, reconciliation: 20
 * mismatches). Reproduced here by taking the shard over during that read.
 */
import { describe, expect, it } from 'vitest';
import { BalanceRepository } from '@settlement/scylla';
import { addJob, expectBalances, inProcessShardSettler, openTestBed, usersOf } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

const SHARD = 'btc_usdt';

describe('a take-over while a job is in hand', () => {
  it('waits for the job: the rows the job cached stay under it, and every balance is exact', async () => {
    const bed = await openTestBed();
    try {
      const { ks, catalog } = bed;
      const queue = bed.queues.get(SHARD)!;
      const stream = generateStream({ catalog, messages: 1_500, users: 40, seed: 39 });
      const jobs = toJobs(stream.messages.filter((m) => m.shard === SHARD), 25).slice(0, 3);
      // Added one at a time: no read-ahead for the next job, so job 3 reads its uncached rows itself.
      const j1 = await addJob(queue, jobs[0]!);
      // The lease comes back while job 3 reads the rows it did not cache.
      const real = new BalanceRepository(ks.client, ks.config.scylladb.keyspace);
      const balances = Object.create(real) as BalanceRepository;
      let takeOverDuringRead = false;
      // Job 1 by another settler: this one starts with a shard that has rows, and caches only what it reads.
      await inProcessShardSettler({ ks, catalog, queue, shard: SHARD }).process(j1);
      const settler = inProcessShardSettler({ ks, catalog, queue, shard: SHARD, balances });
      balances.loadShardRows = async (shard, keys) => {
        const rows = await real.loadShardRows(shard, keys);
        if (takeOverDuringRead) {
          takeOverDuringRead = false;
          settler.takeOver();
        }
        return rows;
      };
      await settler.process(await addJob(queue, jobs[1]!));
      const j3 = await addJob(queue, jobs[2]!);
      takeOverDuringRead = true;
      await settler.process(j3);
      // Job 3 read rows job 2 had not cached, besides using some it had.
      expect(takeOverDuringRead).toBe(false);

      const settled = jobs.flatMap((j) => j.messages);
      await expectBalances(bed.balances, expectedBalances(settled, catalog.feeAccountUserId), usersOf(settled, catalog.feeAccountUserId));
    } finally {
      await bed.close();
    }
  }, 60_000);
});
