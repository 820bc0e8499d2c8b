/**
 * A fix run twice while no settler runs (issue 18.1), real Redis, Cassandra and settler. Each
 * run times out with its corrections still queued; when a settler starts it must correct each
 * row once: the same measured mismatch is the same correction whatever run found it, and a
 * correction applies only to the exact row state it was measured on (version and values), so
 * a second correction of a row the first one already fixed changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import { waitFor, type TestKeyspace } from '@settlement/testing';
import { createLogger } from '@settlement/runtime';
import { ReconciliationStore } from '@settlement/scylla';
import type { SettlementConfig } from '@settlement/config';
import type { ShardBalanceRow } from '@settlement/domain';
// Test only: the real settler runs in-process. Application code never imports another app.
import { startSettler, type RunningSettler } from '@settlement/settler';
import { reconcileOnce, type ReconcileSummary } from '../src/index.js';
import { openSettledBed, type SettledBed } from './settled-bed.js';

/** A stored contribution row of user_balances. */
type Row = ShardBalanceRow;

let bed: SettledBed | undefined;
let ks: TestKeyspace;
/** The settler started by the test, after the fix runs. */
let settler: RunningSettler | undefined;
let users: bigint[];
let queues: ReadonlyMap<string, Queue>;
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  // The settler that settles the stream stops: it is behind (here: not running) for longer
  // than the fix runs wait.
  bed = await openSettledBed({ reconciliation: { page_size: 40, concurrency: 4, fix_wait_ms: 30_000 }, messages: 600, users: 30, seed: 18 }, logger);
  ({ ks, queues } = bed);
  users = [...bed.stream.users];
}, 90_000);

afterAll(async () => {
  await settler?.close();
  await bed?.close();
});

const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });

async function rowsOf(userId: bigint): Promise<Row[]> {
  return (await q('SELECT asset_id, shard, available, locked, version FROM user_balances WHERE user_id = ?', [userId])).rows.map((r) => ({
    userId,
    assetId: r['asset_id'] as number,
    shard: r['shard'] as string,
    available: r['available'] as bigint,
    locked: r['locked'] as bigint,
    version: r['version'] as bigint,
  }));
}

async function readRow(key: Pick<Row, 'userId' | 'assetId' | 'shard'>): Promise<Row | undefined> {
  return (await rowsOf(key.userId)).find((r) => r.assetId === key.assetId && r.shard === key.shard);
}

/** One settled row of the user, corrupted behind the settler by +1 available; returns the true row. */
async function corruptByOne(userId: bigint): Promise<Row> {
  const row = (await rowsOf(userId)).find((r) => queues.has(r.shard));
  if (row === undefined) throw new Error(`user ${userId} has no row of a configured shard`);
  // Just above the settler's own write timestamp (fenced, not a wall clock), so the change sticks.
  const written = (await q('SELECT WRITETIME(available) AS wt FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [row.userId, row.assetId, row.shard])).first()!['wt'] as bigint;
  await q('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 1n, row.available + 1n, row.userId, row.assetId, row.shard]);
  expect((await readRow(row))?.available).toBe(row.available + 1n);
  return row;
}

/** `settle reconcile --users … --fix --wait` with a wait shorter than the settler is away. */
function fixRun(userIds: readonly bigint[], jobId: string): Promise<ReconcileSummary> {
  const config: SettlementConfig = { ...ks.config, reconciliation: { ...ks.config.reconciliation, fix_wait_ms: 500 } };
  return reconcileOnce({ config, logger, request: { mode: 'users', userIds: userIds.map(String), fix: true }, jobId });
}

async function unfinishedJobs(): Promise<number> {
  let n = 0;
  for (const queue of queues.values()) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    n += Object.values(counts).reduce((a, b) => a + b, 0);
  }
  return n;
}

async function failedJobs(): Promise<number> {
  let n = 0;
  for (const queue of queues.values()) n += await queue.getFailedCount();
  return n;
}

describe('a fix run twice while the settler is behind', () => {
  it('corrects each row once, whether the runs found the same rows or not', async () => {
    // A: two runs over the same user find the same mismatch.
    const truthA = await corruptByOne(users[2]!);
    // B: a run over one user, then a run over two users: the row of the first user is in both,
    // but the runs' corrections cover different rows, so they are different corrections.
    const truthB = await corruptByOne(users[5]!);
    const truthC = await corruptByOne(users[9]!);

    const runs = [
      await fixRun([truthA.userId], 'fix-twice-a1'),
      await fixRun([truthA.userId], 'fix-twice-a2'),
      await fixRun([truthB.userId], 'fix-twice-b1'),
      await fixRun([truthB.userId, truthC.userId], 'fix-twice-b2'),
    ];
    for (const run of runs) expect(run.correctionJobs).toBeGreaterThan(0);
    const store = new ReconciliationStore(ks.client, ks.config.scylladb.keyspace);
    // Each run timed out with its corrections queued (the reported scenario).
    for (const jobId of ['fix-twice-a1', 'fix-twice-a2', 'fix-twice-b1', 'fix-twice-b2']) {
      const outcomes = (await store.listFindings(jobId)).map((f) => (f.detail['fix'] as { outcome?: string } | undefined)?.outcome).filter((o) => o !== undefined);
      expect(outcomes.length, jobId).toBeGreaterThan(0);
      expect(new Set(outcomes), jobId).toEqual(new Set(['timeout']));
    }
    // The same measured mismatch is the same correction: the second run's job is the first one's.
    const correctionIds = async (jobId: string) =>
      (await store.listFindings(jobId)).map((f) => (f.detail['fix'] as { correctionId?: string } | undefined)?.correctionId).filter((id) => id !== undefined);
    expect(await correctionIds('fix-twice-a2')).toEqual(await correctionIds('fix-twice-a1'));
    expect(await unfinishedJobs()).toBe(3);

    settler = await startSettler({ config: ks.config, logger });
    await waitFor('queued corrections applied', async () => (await unfinishedJobs()) === 0, 30_000, 100);
    expect(await failedJobs()).toBe(0);

    for (const truth of [truthA, truthB, truthC]) {
      // Each row is back at its settled value: corrected once, not twice (−1 from the truth).
      expect(await readRow(truth)).toEqual(truth);
    }
    const after = await reconcileOnce({ config: ks.config, logger, request: { mode: 'full' }, jobId: 'fix-twice-after' });
    expect(after).toMatchObject({ status: 'completed', errors: 0 });
  }, 90_000);
});
