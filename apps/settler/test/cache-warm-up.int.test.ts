/**
 * After a take-over the settler's row cache is empty, and until it is complete every job that
 * touches a user the settler has not cached reads that user's rows (a bench run with 10,000
 * users: three jobs in four still read rows minutes after the lease balancer moved their
 * shard). The settler scans the balance table once in the background (cache-warmer.ts); from
 * then on no job reads rows, and the balances stay exact.
 */
import { describe, expect, it } from 'vitest';
import { BalanceRepository } from '@settlement/scylla';
import { addJob, expectBalances, inProcessShardSettler, openTestBed, usersOf, waitFor } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

const SHARD = 'btc_usdt';

describe('the row cache after a take-over', () => {
  it('is completed by one scan, after which jobs read no rows, even of users never cached', async () => {
    const bed = await openTestBed();
    try {
      const { ks, catalog } = bed;
      const queue = bed.queues.get(SHARD)!;
      const stream = generateStream({ catalog, messages: 2_000, users: 60, seed: 53 });
      const jobs = toJobs(stream.messages.filter((m) => m.shard === SHARD), 20).slice(0, 4);
      expect(jobs).toHaveLength(4);
      // Jobs 1-2 by a settler that is gone: the shard has rows the new settler never cached.
      const gone = inProcessShardSettler({ ks, catalog, queue, shard: SHARD });
      for (const job of jobs.slice(0, 2)) await gone.process(await addJob(queue, job));

      const real = new BalanceRepository(ks.client, ks.config.scylladb.keyspace);
      const balances = Object.create(real) as BalanceRepository;
      let rowReads = 0;
      balances.loadShardRows = (shard, keys) => {
        rowReads += 1;
        return real.loadShardRows(shard, keys);
      };
      const settler = inProcessShardSettler({ ks, catalog, queue, shard: SHARD, balances, cacheWarmRowsMax: 1_000_000 });
      settler.takeOver();
      // Its first job reads the rows it needs (the cache is empty; it applies job 2 again first,
      // the watermark's, since it did not write it) and starts the scan.
      await settler.process(await addJob(queue, jobs[2]!));
      await waitFor('the row cache to be complete', () => settler.cache.complete, 10_000, 20);
      const readsBefore = rowReads;

      // Job 4 touches users job 3 did not: some settled by the gone settler, some never seen.
      const cachedUsers = usersOf(jobs[2]!.messages, catalog.feeAccountUserId);
      const earlierUsers = usersOf(jobs.slice(0, 2).flatMap((j) => j.messages), catalog.feeAccountUserId);
      const last = [...usersOf(jobs[3]!.messages, catalog.feeAccountUserId)].filter((u) => !cachedUsers.has(u));
      expect(last.some((u) => earlierUsers.has(u))).toBe(true);
      expect(last.some((u) => !earlierUsers.has(u))).toBe(true);
      await settler.process(await addJob(queue, jobs[3]!));
      expect(rowReads).toBe(readsBefore);

      const settled = jobs.flatMap((j) => j.messages);
      await expectBalances(bed.balances, expectedBalances(settled, catalog.feeAccountUserId), usersOf(settled, catalog.feeAccountUserId));
    } finally {
      await bed.close();
    }
  }, 60_000);
});
