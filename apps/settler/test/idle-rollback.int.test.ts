/**
 * An idle shard whose storage went back (a node lost its unsynced tail) after another settler
 * had settled and completed its jobs: the settler that holds it now saw none of those batches
 * acknowledged, and its check at the take-over ran before the loss. Nothing else would ever
 * look again: no job arrives, and no node event reaches this process. Its periodic poll compares
 * the stored watermark with the newest completed jobs and asks for a verify job, which applies
 * the lost jobs again from the completed ones.
 *
 * Chaos run, 4 Dec, seed 1204: btc_usdt and eth_usdt stayed at 990/2988 and 989/2994 for two
 * minutes after a kill -9 of Cassandra; their new holder's take-over check had failed on the
 * node being down.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { VERIFY_JOB_NAME, encodeVerifyJob, verifyJobId } from '@settlement/domain';
import { startSettler } from '../src/settler.js';
import { addJob, enqueue, expectBalances, inProcessShardSettler, openTestBed, rollBackWatermark, usersOf, waitFor, waitForWatermarks } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

const SHARD = 'btc_usdt';


describe('an idle shard rolled back under a settler that never saw its batches', () => {
  it('is repaired from the completed jobs without any new job or node event', async () => {
    const bed = await openTestBed({ settler: { shard_lease_ms: 0 } });
    const logger = pino({ level: 'silent' });
    try {
      const stream = generateStream({ catalog: bed.catalog, messages: 1_500, users: 50, seed: 61 });
      const jobs = toJobs(stream.messages.filter((m) => m.shard === SHARD), 20).slice(0, 4);
      const last = jobs.at(-1)!.messages.at(-1)!.seq;
      const first = await startSettler({ config: bed.ks.config, logger, shards: [SHARD], heartbeatIntervalMs: 200 });
      try {
        await enqueue(bed.queues, jobs);
        await waitForWatermarks(bed.watermarks, new Map([[SHARD, last]]), 30_000);
      } finally {
        await first.close();
      }

      const second = await startSettler({ config: bed.ks.config, logger, shards: [SHARD], heartbeatIntervalMs: 200 });
      try {
        // Its start-up check found nothing behind; now storage goes back to job 1's watermark.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const rolledBack = jobs[0]!.messages.at(-1)!.seq;
        await rollBackWatermark(bed, SHARD, rolledBack, jobs[0]!.jobId);
        expect((await bed.watermarks.get(SHARD))?.lastSeq).toBe(rolledBack);
        await waitFor('the watermark back at the last job', async () => (await bed.watermarks.get(SHARD))!.lastSeq >= last, 20_000);
      } finally {
        await second.close();
      }
      const settled = jobs.flatMap((j) => j.messages);
      await expectBalances(bed.balances, expectedBalances(settled, bed.catalog.feeAccountUserId), usersOf(settled, bed.catalog.feeAccountUserId));
    } finally {
      await bed.close();
    }
  }, 90_000);

  // Chaos run, 4 Dec, seed 1504: Redis came back empty after every job of btc_eth had completed,
  // then a kill -9 took the shard from 2,998 back to 219. Neither Redis nor Cassandra held those
  // batches any more; only the settler that had settled them remembered 2,998 acknowledged, and
  // it no longer held the shard. Its verify requests reached the holder, which knew nothing past
  // 233, found nothing to repair, and the shard stayed there for good.
  it('reaches what the settler that asked for the check saw acknowledged, halting for the engine to re-send what no job holds', async () => {
    const bed = await openTestBed();
    try {
      const queue = bed.queues.get(SHARD)!;
      const stream = generateStream({ catalog: bed.catalog, messages: 1_500, users: 50, seed: 62 });
      const jobs = toJobs(stream.messages.filter((m) => m.shard === SHARD), 20).slice(0, 3);
      const added = await Promise.all(jobs.map((job) => addJob(queue, job)));
      const gone = inProcessShardSettler({ ks: bed.ks, catalog: bed.catalog, queue, shard: SHARD });
      for (const job of added) await gone.process(job);
      const job1Last = jobs[0]!.messages.at(-1)!.seq;
      const job3Last = jobs[2]!.messages.at(-1)!.seq;
      expect(gone.acknowledged).toBe(job3Last);

      // Redis loses jobs 2 and 3; storage goes back to job 1's watermark.
      await added[1]!.remove();
      await added[2]!.remove();
      await rollBackWatermark(bed, SHARD, job1Last, jobs[0]!.jobId);

      // The holder, which never saw them, gets the gone settler's verify request.
      const holder = inProcessShardSettler({ ks: bed.ks, catalog: bed.catalog, queue, shard: SHARD });
      await holder.process(await queue.add(VERIFY_JOB_NAME, encodeVerifyJob(SHARD, gone.acknowledged), { jobId: verifyJobId(SHARD, Date.now()) }));
      expect(holder.halted).toMatchObject({ afterSeq: job1Last, throughSeq: job3Last });
      expect((await bed.watermarks.get(SHARD))?.lastSeq).toBe(job1Last);
    } finally {
      await bed.close();
    }
  }, 60_000);
});
