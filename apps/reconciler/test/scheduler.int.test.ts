/**
 * Reconciler processes (real child processes, as deployed): two starting at the same time make
 * exactly one job scheduler and one scheduled job; SIGTERM stops each with exit code 0, and one
 * stopped in the middle of a run finishes its page and records the run as abandoned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ROOT, appEnv, createTestKeyspace, testConfig, waitFor, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { heartbeatPattern } from '@settlement/domain';
import { createRedisConnection } from '@settlement/runtime';
import { RECONCILE_FULL_SCHEDULER_ID, RECONCILE_JOB_NAME, RECONCILE_SCHEDULER_ID, RECONCILIATION_QUEUE } from '@settlement/domain';
import { parseConfig } from '@settlement/config';
import { ReconciliationStore } from '@settlement/scylla';
import { writeDataset } from './dataset.js';

let ks: TestKeyspace;
let redis: Redis;
let queue: Queue;
const children: ChildProcess[] = [];

function startReconcilerProcess(configFile: string): { child: ChildProcess; started: Promise<void>; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/reconciler/src/main.ts'], { env: appEnv(configFile), cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  const started = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('"msg":"reconciler started"')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`reconciler exited with ${code} before it started:\n${output}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, started, exited, output: () => output };
}

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ log_level: 'info', reconciliation: { enabled: true, interval_seconds: 3600, sample_size: 1000, heartbeat_interval_ms: 200 } }));
  redis = createRedisConnection(ks.config.redis.url);
  queue = new Queue(RECONCILIATION_QUEUE, { connection: redis, prefix: ks.config.redis.prefix });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await redis?.quit();
  await ks?.drop();
});

/** Two reconcilers started together: one scheduler, one run taken, one pending; both stop with 0. */
async function schedulesOnceAndStops(a: ReturnType<typeof startReconcilerProcess>, b: ReturnType<typeof startReconcilerProcess>): Promise<void> {
  await Promise.all([a.started, b.started]);

  const schedulers = await queue.getJobSchedulers();
  expect(schedulers).toHaveLength(2);
  const hourly = schedulers.find((sch) => sch.key === RECONCILE_SCHEDULER_ID)!;
  expect(hourly).toMatchObject({ key: RECONCILE_SCHEDULER_ID, name: RECONCILE_JOB_NAME, every: 3_600_000 });
  // Hourly: the users whose balances changed; daily (cron): everyone.
  expect(hourly.template?.data).toEqual({ mode: 'changed', fix: false, trigger: 'scheduler' });
  const full = schedulers.find((sch) => sch.key === RECONCILE_FULL_SCHEDULER_ID)!;
  expect(full).toMatchObject({ name: RECONCILE_JOB_NAME, pattern: '0 3 * * *' });
  expect(full.template?.data).toEqual({ mode: 'full', fix: false, trigger: 'scheduler' });
  expect(await queue.getJobSchedulersCount()).toBe(2);
  // A new `every` scheduler runs once at creation; BullMQ adds the next run, an interval away,
  // when a worker takes that first one, which may come just after "started": wait for it.
  // Then neither process has added a second run or a second pending one. The daily sweep waits
  // for its cron time: one more delayed job.
  const counts = await waitFor(
    'the first scheduled run taken and the next one pending',
    async () => {
      const c = await queue.getJobCounts('delayed', 'waiting', 'active', 'completed', 'failed');
      return c.delayed! >= 2 && c.active! + c.completed! >= 1 ? c : undefined;
    },
    15_000,
    50,
  );
  expect(counts.delayed).toBe(2);
  expect(counts.waiting! + counts.active! + counts.completed!).toBe(1);
  expect(counts.failed).toBe(0);
  const next = (await queue.getDelayed()).find((job) => job.repeatJobKey === RECONCILE_SCHEDULER_ID);
  expect(next!.name).toBe(RECONCILE_JOB_NAME);
  expect(next!.timestamp + next!.delay - Date.now()).toBeGreaterThan(3_500_000);

  // Both processes are alive and publish a heartbeat.
  await new Promise((r) => setTimeout(r, 400));
  const beats = await redis.keys(heartbeatPattern(ks.config.redis.prefix));
  expect(beats.filter((k) => k.includes(':reconciler:'))).toHaveLength(2);

  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  expect(await a.exited).toBe(0);
  expect(await b.exited).toBe(0);
  expect(a.output()).toContain('"msg":"stopped"');
  expect(await queue.getJobSchedulersCount()).toBe(2);
}

describe('reconciler processes', () => {
  it('create the hourly scheduler exactly once, and exit 0 on SIGTERM', async () => {
    const configFile = writeConfigFile(ks.config, path.join(ks.config.data_dir, 'reconciler.yaml'));
    const a = startReconcilerProcess(configFile);
    const b = startReconcilerProcess(configFile);
    try {
      await schedulesOnceAndStops(a, b);
    } finally {
      // A failed check must not leave them running into the next test, taking its job.
      for (const p of [a, b]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  }, 60_000);

  it('on SIGTERM during a run, finishes the current page, records the run as abandoned, and exits 0', async () => {
    await writeDataset({ client: ks.client, keyspace: ks.config.scylladb.keyspace, symbols: ks.config.symbols.map((s) => s.name), feeAccountUserId: ks.config.fee_account_user_id, users: 1000 });
    const config = parseConfig({ ...JSON.parse(writeConfigJson(ks.config)), reconciliation: { ...ks.config.reconciliation, enabled: false, page_size: 5, concurrency: 1 } });
    const p = startReconcilerProcess(writeConfigFile(config, path.join(ks.config.data_dir, 'reconciler-small-pages.yaml')));
    await p.started;
    const job = await queue.add(RECONCILE_JOB_NAME, { mode: 'full' });
    for (let i = 0; i < 200; i += 1) {
      const progress = (await queue.getJob(job.id!))?.progress as { usersChecked?: number } | undefined;
      if ((progress?.usersChecked ?? 0) >= 10) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const done = (await queue.getJob(job.id!))!;
    expect(await done.getState()).toBe('completed');
    const summary = done.returnvalue as { status: string; usersChecked: number };
    expect(summary.status).toBe('abandoned');
    expect(summary.usersChecked % 5).toBe(0);
    expect(summary.usersChecked).toBeLessThan(1001);
    expect(await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).getJob(job.id!)).toMatchObject({ status: 'abandoned', usersChecked: summary.usersChecked });
  }, 60_000);
});

function writeConfigJson(config: unknown): string {
  return JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
