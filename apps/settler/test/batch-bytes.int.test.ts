/**
 * Batches bounded by bytes (issue 17, point 4). Apache Cassandra ≥ 2.2 rejects a LOGGED BATCH
 * above batch_size_fail_threshold_in_kb (50 KB by default) with InvalidRequest "Batch too large";
 * a full 50-message job is ~126 KB. The local Cassandra 2.1 has no such threshold, so the second
 * test puts one in front of it: a writer that refuses, with the error Cassandra sends, every
 * batch above a statement count, as a stricter server would.
 */
import cassandra from 'cassandra-driver';
import type { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_JOB_NAME, encodeSettlementJob } from '@settlement/domain';
import { SettlementWriter, type CqlStatement } from '@settlement/scylla';
import { startSettler } from '../src/settler.js';
import { StorageError } from '../src/storage-error.js';
import { enqueue, expectBalances, inProcessShardSettler, openTestBed, usersOf, waitForWatermarks, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs } from './stream-generator.js';

let bed: TestBed;

beforeAll(async () => {
  bed = await openTestBed({ settler: { batch_bytes_max: 8_000 } });
});

afterAll(async () => {
  await bed?.close();
});

describe('batches bounded by bytes', () => {
  it('splits every job into batches under settler.batch_bytes_max and settles the stream exactly', async () => {
    const stream = generateStream({ catalog: bed.catalog, messages: 3_000, users: 200, seed: 41 });
    const jobs = toJobs(stream.messages, 50);
    const settler = await startSettler({ config: bed.ks.config, logger: pino({ level: 'silent' }), heartbeatIntervalMs: 500 });
    try {
      await enqueue(bed.queues, jobs);
      await waitForWatermarks(bed.watermarks, stream.lastSeqByShard, 90_000);
      await expectBalances(bed.balances, expectedBalances(stream.messages, bed.catalog.feeAccountUserId), usersOf(stream.messages, bed.catalog.feeAccountUserId));
      const batches = (await settler.metrics.batches.get()).values.filter((v) => v.labels.kind === 'settle').reduce((n, v) => n + v.value, 0);
      // ~3 trades of ~2.6 KB fit in 8 KB: a 50-message job takes many batches.
      expect(batches).toBeGreaterThan(jobs.length * 4);
    } finally {
      await settler.close();
    }
  }, 120_000);

  it('plans a job again in smaller chunks when the server rejects a batch as too large', async () => {
    const shard = 'eth_usdt';
    const queue: Queue = bed.queues.get(shard)!;
    const stream = generateStream({ catalog: bed.catalog, messages: 2_000, users: 50, seed: 42, firstSeq: 1_000_000n, firstUserId: 90_000n, firstTradeId: 9_000_000n, feeShare: 0 });
    const messages = stream.messages.filter((m) => m.shard === shard);
    const prevByShard = new Map([[shard, (await bed.watermarks.get(shard))?.lastSeq ?? 0n]]);
    const [job] = toJobs(messages, 50, { prevByShard });
    const added = await queue.add(SETTLE_JOB_NAME, encodeSettlementJob(shard, job!.prevLastSeq, job!.messages), { jobId: job!.jobId });

    const config = bed.ks.config;
    const real = new SettlementWriter({ client: bed.ks.client, keyspace: config.scylladb.keyspace, symbols: config.symbols.map((s) => s.name), consistency: config.scylladb.consistency, feeAccountUserId: bed.catalog.feeAccountUserId });
    const statementsMax = 30;
    const written: number[] = [];
    let rejected = 0;
    const strict = Object.create(real) as SettlementWriter;
    strict.execute = async (statements: readonly CqlStatement[]): Promise<void> => {
      if (statements.length > statementsMax) {
        rejected += 1;
        throw new cassandra.errors.ResponseError(cassandra.types.responseErrorCodes.invalid, 'Batch too large');
      }
      await real.execute(statements);
      written.push(statements.length);
    };
    const settler = inProcessShardSettler({ ks: bed.ks, catalog: bed.catalog, queue, shard, writer: strict, batchBytesMax: 40_000 });
    // What settler.ts does: a storage error starts the job again (after a backoff).
    let outcome;
    for (let attempt = 0; outcome === undefined; attempt++) {
      expect(attempt).toBeLessThan(8);
      outcome = await settler.process(added).catch((error: unknown) => {
        expect(error).toBeInstanceOf(StorageError);
        return undefined;
      });
    }
    expect(rejected).toBeGreaterThan(0);
    expect(Math.max(...written)).toBeLessThanOrEqual(statementsMax);
    expect(written.length).toBeGreaterThan(1);
    expect((await bed.watermarks.get(shard))?.lastSeq).toBe(job!.messages.at(-1)!.seq);
    const users = [...usersOf(job!.messages, bed.catalog.feeAccountUserId)].filter((u) => u !== bed.catalog.feeAccountUserId);
    await expectBalances(bed.balances, expectedBalances(job!.messages, bed.catalog.feeAccountUserId), users);
  }, 60_000);
});
