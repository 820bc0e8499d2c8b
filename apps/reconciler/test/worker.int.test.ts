/**
 * The reconcile worker in-process, against real Redis and Cassandra: a job enqueued by hand runs
 * and reports progress; a wrong payload fails at once with a reason naming the field; close()
 * during a run finishes the current page and records the run as abandoned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueEvents, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { createLogger, createRedisConnection } from '@settlement/runtime';
import { ReconciliationStore } from '@settlement/scylla';
import { RECONCILE_SCHEDULER_ID, RECONCILIATION_QUEUE } from '@settlement/domain';
import { addReconcileJob, createReconcileQueue, startReconciler, type ReconcileSummary, type RunningReconciler } from '../src/index.js';
import { writeDataset } from './dataset.js';

const USERS = 200;
let ks: TestKeyspace;
let redis: Redis;
let queue: Queue;
let events: QueueEvents;
let reconciler: RunningReconciler | undefined;
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ reconciliation: { enabled: false, page_size: 4, concurrency: 2 } }));
  await writeDataset({ client: ks.client, keyspace: ks.config.scylladb.keyspace, symbols: ks.config.symbols.map((s) => s.name), feeAccountUserId: ks.config.fee_account_user_id, users: USERS });
  redis = createRedisConnection(ks.config.redis.url);
  queue = createReconcileQueue({ connection: redis, prefix: ks.config.redis.prefix });
  events = new QueueEvents(RECONCILIATION_QUEUE, { connection: redis.duplicate(), prefix: ks.config.redis.prefix });
  await events.waitUntilReady();
  // A scheduler left by an earlier deployment: with reconciliation.enabled false it must go.
  await queue.upsertJobScheduler(RECONCILE_SCHEDULER_ID, { every: 3_600_000 }, { name: 'reconcile', data: { mode: 'sample' } });
  reconciler = await startReconciler({ config: ks.config, logger });
}, 120_000);

afterAll(async () => {
  await reconciler?.close();
  await events?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await redis?.quit();
  await ks?.drop();
});

async function finished(job: Job): Promise<{ state: string; job: Job }> {
  await job.waitUntilFinished(events, 30_000).catch(() => undefined);
  const reloaded = (await queue.getJob(job.id!))!;
  return { state: await reloaded.getState(), job: reloaded };
}

describe('reconcile worker', () => {
  it('removes the scheduler when scheduled reconciliation is disabled', async () => {
    expect(await queue.getJobSchedulersCount()).toBe(0);
    // Its pending run goes with it.
    expect(await queue.getDelayedCount()).toBe(0);
  });

  it('runs a job enqueued by hand and returns its summary', async () => {
    const job = await addReconcileJob(queue, { mode: 'users', userIds: ['1', '2', 3, '4', '5'] });
    const { state, job: done } = await finished(job);
    expect(state).toBe('completed');
    const summary = done.returnvalue as ReconcileSummary;
    expect(summary).toMatchObject({ jobId: job.id, trigger: 'manual', mode: 'users', status: 'completed', usersChecked: 5, rowsChecked: 15, errors: 0 });
    expect(done.progress).toMatchObject({ phase: 'done', percent: 100, usersChecked: 5 });
    const record = await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).getJob(job.id!);
    expect(record).toMatchObject({ status: 'completed', mode: 'users', trigger: 'manual', usersChecked: 5, rowsChecked: 15, errors: 0 });
  });

  it.each([
    [{ mode: 'everything' }, 'Invalid reconcile job: mode: mode must be one of sample, users, full, changed'],
    [{ mode: 'users', userIds: [] }, 'Invalid reconcile job: userIds: Too small: expected array to have >=1 items'],
    [{ mode: 'users', userIds: ['12', 'abc'] }, 'Invalid reconcile job: userIds.1: must be a decimal user id'],
    [{ mode: 'sample', size: -5 }, 'Invalid reconcile job: size: Too small: expected number to be >0'],
    [{ mode: 'full', fix: 'yes' }, 'Invalid reconcile job: fix: Invalid input: expected boolean, received string'],
  ])('fails the payload %j at once with a clear reason', async (payload, reason) => {
    const job = await queue.add('reconcile', payload, { attempts: 3 });
    const { state, job: done } = await finished(job);
    expect(state).toBe('failed');
    expect(done.failedReason).toBe(reason);
    // UnrecoverableError: no retry of a payload that can never be right.
    expect(done.attemptsMade).toBe(1);
  });

  it('fails a job with another name', async () => {
    const job = await queue.add('recompute', { mode: 'full' });
    const { state, job: done } = await finished(job);
    expect(state).toBe('failed');
    expect(done.failedReason).toBe('Invalid reconcile job: name: is "recompute", expected "reconcile"');
  });

  it('on close, finishes the current page and records the run as abandoned', async () => {
    const job = await addReconcileJob(queue, { mode: 'full' });
    // Wait until the run has checked at least one page (4 users), then stop the reconciler.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const progress = (await queue.getJob(job.id!))?.progress as { usersChecked?: number } | undefined;
      if ((progress?.usersChecked ?? 0) > 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await reconciler!.close();
    await reconciler!.close(); // idempotent
    reconciler = undefined;
    const done = (await queue.getJob(job.id!))!;
    expect(await done.getState()).toBe('completed');
    const summary = done.returnvalue as ReconcileSummary;
    expect(summary.status).toBe('abandoned');
    expect(summary.usersChecked % 4).toBe(0);
    expect(summary.usersChecked).toBeLessThan(USERS + 1);
    const record = await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).getJob(job.id!);
    expect(record).toMatchObject({ status: 'abandoned', usersChecked: summary.usersChecked });
  });
});
