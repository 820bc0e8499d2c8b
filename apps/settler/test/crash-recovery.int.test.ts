/**
 * Settler processes started as children: killed with SIGKILL mid-stream three times (and
 * restarted), then three running at once on the same queues. The final balances are exact:
 * nothing lost, nothing doubled, no job failed. SIGTERM then stops each one with exit code 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, appEnv, createTestKeyspace, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { MarketCatalog } from '@settlement/domain';
import { heartbeatPattern } from '@settlement/domain';
import { createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { BalanceRepository, DeadLetterRepository, WatermarkRepository } from '@settlement/scylla';
import { enqueue, expectBalances, expectConservation, waitFor, waitForDrained, waitForWatermarks } from './harness.js';
import { expectedBalances, generateStream, toJobs, type GeneratedStream } from './stream-generator.js';

let ks: TestKeyspace;
let configFile: string;
let catalog: MarketCatalog;
let redis: ReturnType<typeof createRedisConnection>;
const queues = new Map<string, Queue>();
let watermarks: WatermarkRepository;
let stream: GeneratedStream;
const children = new Set<ChildProcess>();
const output: string[] = [];

beforeAll(async () => {
  // Short locks so a killed settler's job is handed on within seconds.
  // Leases off: every process competes for every job, the hardest case for the single writer.
  const config = testConfig({ settler: { shard_lease_ms: 0, lock_duration_ms: 2_000, stalled_interval_ms: 1_000, retry_max_ms: 500 }, log_level: 'info' });
  ks = await createTestKeyspace(config);
  configFile = writeConfigFile(config, path.join(config.data_dir, 'settlement.yaml'));
  catalog = new MarketCatalog(config);
  redis = createRedisConnection(config.redis.url);
  for (const shard of catalog.shards) queues.set(shard, createSettlementQueue(shard, { connection: redis, prefix: config.redis.prefix }));
  watermarks = new WatermarkRepository(ks.client, config.scylladb.keyspace);
  stream = generateStream({ catalog, messages: 24_000, users: 400, seed: 99 });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const queue of queues.values()) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  await redis?.quit();
  await ks?.drop();
});

function startChild(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/settler/src/main.ts'], { env: appEnv(configFile), cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  child.on('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Share of the stream's messages settled, by shard watermarks. */
async function progress(): Promise<number> {
  const stored = new Map((await watermarks.list()).map((w) => [w.shard, w.lastSeq]));
  let done = 0;
  for (const m of stream.messages) if (m.seq <= (stored.get(m.shard) ?? 0n)) done += 1;
  return done / stream.messages.length;
}

describe('settler processes killed and run side by side', () => {
  it('settles exactly through three SIGKILLs and three concurrent settlers, and stops on SIGTERM with 0', async () => {
    const jobs = toJobs(stream.messages, 50);
    // Jobs per shard interleaved in stream order, as an ingestor would add them.
    jobs.sort((a, b) => (a.messages[0]!.seq < b.messages[0]!.seq ? -1 : 1));
    const upfront = Math.floor(jobs.length * 0.6);
    await enqueue(queues, jobs.slice(0, upfront));

    const reached: number[] = [];
    for (const threshold of [0.1, 0.3, 0.5]) {
      const child = startChild();
      await waitFor(`progress ${threshold}`, async () => (await progress()) >= threshold, 60_000, 25);
      child.kill('SIGKILL');
      await exited(child);
      reached.push(await progress());
    }
    // Each kill landed before the end of the stream, so a job was in flight or waiting.
    expect(reached.every((p) => p < 1)).toBe(true);

    const trio = [startChild(), startChild(), startChild()];
    // The rest arrives while the three run, a few jobs at a time, so the queues keep draining
    // and each job may go to any of them: every process must notice the others' writes.
    await waitFor('three settlers up', async () => {
      const pids = new Set<number>();
      for (const key of await redis.keys(heartbeatPattern(ks.config.redis.prefix))) {
        const beat = JSON.parse((await redis.get(key)) ?? '{}') as { pid?: number };
        if (beat.pid !== undefined) pids.add(beat.pid);
      }
      return trio.every((child) => pids.has(child.pid!));
    }, 30_000);
    for (let i = upfront; i < jobs.length; i += 2) {
      await enqueue(queues, jobs.slice(i, i + 2));
      // Slow enough that each job finds the three processes idle and blocked on the queue, so
      // Redis hands jobs to them in turn, even on a loaded machine.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitForWatermarks(watermarks, stream.lastSeqByShard, 80_000);
    await waitForDrained(queues, 20_000);

    const codes = await Promise.all(
      trio.map((child) => {
        child.kill('SIGTERM');
        return exited(child);
      }),
    );
    expect(codes).toEqual([0, 0, 0]);

    const balances = new BalanceRepository(ks.client, ks.config.scylladb.keyspace);
    const expected = expectedBalances(stream.messages, catalog.feeAccountUserId);
    await expectBalances(balances, expected, [...stream.users, catalog.feeAccountUserId]);
    await expectConservation(balances, expected.supply);
    // The trio really shared shards: some shard's jobs were settled by more than one of them.
    let sharedShards = 0;
    for (const queue of queues.values()) {
      const late = (await queue.getCompleted(0, 1999)).filter((job) => (job.processedBy ?? '').length > 0);
      const names = new Set(late.map((job) => job.processedBy!));
      const byTrio = [...names].filter((name) => trio.some((child) => name.endsWith(`:${child.pid}`)));
      if (byTrio.length >= 2) sharedShards += 1;
    }
    expect(sharedShards).toBeGreaterThan(0);
    let failed = 0;
    for (const queue of queues.values()) failed += await queue.getFailedCount();
    expect(failed).toBe(0);
    const deadLetters = new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace);
    for (const shard of catalog.shards) expect(await deadLetters.list(shard)).toEqual([]);
    // Six processes started; the three last ones stopped cleanly.
    const log = output.join('');
    expect(log.match(/"msg":"settler started"/g)?.length ?? 0).toBe(6);
    expect(log.match(/"msg":"settler stopped"/g)?.length ?? 0).toBe(3);
  }, 170_000);
});
