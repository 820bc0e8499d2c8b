/**
 * The reconciler against data written by the real settler (in-process, real Redis and
 * Cassandra): a settled stream reconciles clean; rows corrupted directly in Cassandra are all
 * found, and nothing else; a fix run sends corrections the settler applies, and the next run
 * is clean again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TestKeyspace } from '@settlement/testing';
import { createLogger } from '@settlement/runtime';
import { MarketCatalog, ingestPositionKey, type SettlementMessage } from '@settlement/domain';
import { ReconciliationStore, WatermarkRepository, type StoredFinding } from '@settlement/scylla';
// The settler's test helpers have no entry of their own (no alias reaches apps/settler/test).
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see above
import { enqueue, waitForWatermarks } from '../../settler/test/harness.js';
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see above
import { expectedBalances, generateStream, toJobs } from '../../settler/test/stream-generator.js';
import { reconcileOnce, type ReconcileSummary } from '../src/index.js';
import { openSettledBed, type SettledBed } from './settled-bed.js';

const USERS = 120;
const MESSAGES = 3000;
let bed: SettledBed | undefined;
let ks: TestKeyspace;
let redis: Redis;
let queues: ReadonlyMap<string, Queue>;
let messages: SettlementMessage[];
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  // The settler keeps running: later tests settle more while the reconciler reads, and apply corrections.
  bed = await openSettledBed(
    { reconciliation: { page_size: 40, concurrency: 8, fix_wait_ms: 30_000 }, messages: MESSAGES, users: USERS, seed: 42, settleTimeoutMs: 80_000, keepSettler: true },
    logger,
  );
  ({ ks, redis, queues } = bed);
  messages = bed.stream.messages;
}, 120_000);

afterAll(async () => {
  await bed?.close();
});

const run = (request: Parameters<typeof reconcileOnce>[0]['request'], jobId: string): Promise<ReconcileSummary> =>
  reconcileOnce({ config: ks.config, logger, request, jobId });
const rowKeys = (findings: readonly StoredFinding[]) =>
  findings.filter((f) => f.kind === 'balance_mismatch' || f.kind === 'missing_row').map((f) => `${f.userId}|${f.assetId}|${f.shard}`).sort();

describe('reconciling a settled stream', () => {
  let store: ReconciliationStore;
  const corrupted: string[] = [];

  it('finds 0 errors and conservation holds after the stream is settled', async () => {
    store = new ReconciliationStore(ks.client, ks.config.scylladb.keyspace);
    const summary = await run({ mode: 'full' }, 'settled-clean');
    expect(summary).toMatchObject({ status: 'completed', errors: 0, warnings: 0 });
    // Every user of the stream, plus the fee account.
    expect(summary.usersChecked).toBe(USERS + 1);
    expect(summary.conservation?.checked).toBe(true);
    const supply = expectedBalances(messages, ks.config.fee_account_user_id).supply;
    expect(summary.conservation?.assets.map((a) => [a.assetId, BigInt(a.available) + BigInt(a.locked), a.ok])).toEqual(
      [...supply.entries()].sort(([a], [b]) => a - b).map(([assetId, total]) => [assetId, total, true]),
    );
  });

  it('reports no false error while the settler is writing (re-read of a partly visible batch)', async () => {
    const catalog = new MarketCatalog(ks.config);
    const first = generateStream({ catalog, messages: MESSAGES, users: USERS, seed: 42 });
    const more = generateStream({ catalog, messages: 8000, users: USERS, seed: 43, firstSeq: first.nextSeq, firstTradeId: first.nextTradeId });
    await enqueue(queues, toJobs(more.messages, 50, { prevByShard: first.lastSeqByShard }));
    // As the ingestor does in the MULTI that adds the jobs: the last sequence enqueued per shard.
    await redis.hset(ingestPositionKey(ks.config.redis.prefix), Object.fromEntries([...more.lastSeqByShard].map(([shard, seq]) => [shard, seq.toString()])));
    const watermarks = new WatermarkRepository(ks.client, ks.config.scylladb.keyspace);
    const settledAll = async () => {
      const stored = new Map((await watermarks.list()).map((w) => [w.shard, w.lastSeq]));
      return [...more.lastSeqByShard].every(([shard, seq]) => (stored.get(shard) ?? 0n) >= seq);
    };
    let runsDuringSettlement = 0;
    let rereads = 0;
    for (let i = 0; i < 30 && !(await settledAll()); i += 1) {
      const summary = await run(i % 2 === 0 ? { mode: 'full' } : { mode: 'sample', size: 60 }, `concurrent-${i}`);
      expect(summary.errors, JSON.stringify(summary.samples)).toBe(0);
      runsDuringSettlement += 1;
      rereads += summary.rereadUsers;
      expect(summary.unconfirmedNegatives).toBe(0);
    }
    expect(runsDuringSettlement).toBeGreaterThan(0);
    await waitForWatermarks(watermarks, more.lastSeqByShard, 80_000);
    messages = [...messages, ...more.messages];
    const after = await run({ mode: 'full' }, 'concurrent-after');
    expect(after).toMatchObject({ errors: 0, usersChecked: USERS + 1 });
    expect(after.conservation?.checked).toBe(true);
    const supply = expectedBalances(messages, ks.config.fee_account_user_id).supply;
    expect(after.conservation?.assets.map((a) => [a.assetId, a.expected, a.ok])).toEqual([...supply.entries()].sort(([a], [b]) => a - b).map(([id, total]) => [id, total.toString(), true]));
    logger.info({ runsDuringSettlement, rereads }, 'runs during settlement');
  });

  it('finds every corrupted row, and nothing else, in a full run and in a users run', async () => {
    const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });
    const users = (await q('SELECT DISTINCT user_id FROM user_balances', [])).rows.map((r) => r['user_id'] as bigint).filter((u) => u >= 1000n).sort((a, b) => (a < b ? -1 : 1));
    const victims = [users[3]!, users[17]!, users[40]!, users[77]!, users[101]!];
    for (const [i, userId] of victims.entries()) {
      const rows = (await q('SELECT asset_id, shard, available, locked FROM user_balances WHERE user_id = ?', [userId])).rows;
      // Two rows of different assets per user where there are; the last user loses one row instead.
      const picked = rows.filter((r, j) => rows.findIndex((x) => x['asset_id'] === r['asset_id']) === j).slice(0, 2);
      for (const row of picked) {
        const key = [userId, row['asset_id'] as number, row['shard'] as string] as const;
        // Stamped just above the row's own write: the settler's fenced timestamps are above any
        // wall clock, so a plain write would lose (libs/domain/src/fencing.ts).
        const written = (await q('SELECT WRITETIME(available) AS wt FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [...key])).first()!['wt'] as bigint;
        if (i === victims.length - 1) {
          await q('DELETE FROM user_balances USING TIMESTAMP ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 1n, ...key]);
        } else {
          await q('UPDATE user_balances USING TIMESTAMP ? SET available = ?, locked = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [
            written + 1n, (row['available'] as bigint) + BigInt(1000 + i), (row['locked'] as bigint) - BigInt(i), ...key,
          ]);
        }
        corrupted.push(`${key[0]}|${key[1]}|${key[2]}`);
      }
    }
    corrupted.sort();
    expect(corrupted.length).toBeGreaterThanOrEqual(8);

    const full = await run({ mode: 'full' }, 'settled-corrupt-full');
    const fullFindings = await store.listFindings('settled-corrupt-full');
    expect(rowKeys(fullFindings)).toEqual(corrupted);
    // Other findings (negative sums the corruption caused, conservation) name only victims.
    expect(fullFindings.filter((f) => f.userId !== undefined && !victims.includes(f.userId))).toEqual([]);
    expect(full.byKind['conservation']).toBeGreaterThanOrEqual(1);

    await run({ mode: 'users', userIds: victims.map(String) }, 'settled-corrupt-users');
    expect(rowKeys(await store.listFindings('settled-corrupt-users'))).toEqual(corrupted);
  });

  it('fixes the corrupted rows through the settler, and the next run finds 0 errors', async () => {
    const fix = await run({ mode: 'full', fix: true }, 'settled-fix');
    const findings = await store.listFindings('settled-fix');
    const fixedRows = findings.filter((f) => f.kind === 'balance_mismatch' || f.kind === 'missing_row');
    expect(rowKeys(fixedRows)).toEqual(corrupted);
    expect(fixedRows.filter((f) => !f.fixed).map((f) => `${f.userId}|${f.assetId}|${f.shard}: ${JSON.stringify(f.detail)}`)).toEqual([]);
    const one = fixedRows.find((f) => f.kind === 'balance_mismatch')!;
    const detail = one.detail['fix'] as { outcome: string; before: { available: string }; after: { available: string } };
    expect(detail.outcome).toBe('completed');
    expect(BigInt(detail.before.available)).toBe(one.actualAvailable);
    expect(BigInt(detail.after.available)).toBe(one.expectedAvailable);
    // Corrections are recorded by the settler that applied them.
    const applied = await ks.client.execute('SELECT correction_id, reconciliation_job_id FROM balance_corrections', [], { prepare: true });
    expect(applied.rows.length).toBe(fix.correctionJobs);
    expect(applied.rows.every((r) => r['reconciliation_job_id'] === 'settled-fix')).toBe(true);

    const after = await run({ mode: 'full' }, 'settled-after-fix');
    expect(after).toMatchObject({ status: 'completed', errors: 0, warnings: 0 });
    expect(after.conservation?.assets.every((a) => a.ok)).toBe(true);
  });
});
