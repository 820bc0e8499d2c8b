/**
 * Reconciler corrections against rows changed behind the settler, real Redis and Cassandra. A
 * correction carries expected − actual as the reconciler read the stored row; the settler must
 * apply it to the row as stored (not to its cache, which still holds the right value), recreate
 * a deleted row at its expected value with the shard watermark as version (warm or cold cache),
 * write it in the correction's batch at the shard's write timestamp, apply each correction once,
 * and go on settling from the corrected values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKeyspace } from '@settlement/testing';
import { CORRECT_JOB_NAME, MarketCatalog, encodeBigints, type CorrectionJob, type SettlementMessage } from '@settlement/domain';
import { createLogger } from '@settlement/runtime';
import { BalanceRepository, WatermarkRepository } from '@settlement/scylla';
import { startSettler, type RunningSettler } from '../src/index.js';
import { enqueue, expectBalances, expectConservation, waitFor, waitForDrained, waitForWatermarks, openTestBed, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs, type GeneratedStream } from './stream-generator.js';

const SHARD = 'btc_usdt';
let ks: TestKeyspace;
let catalog: MarketCatalog;
let bed: TestBed;
let queues: TestBed['queues'];
let balances: BalanceRepository;
let watermarks: WatermarkRepository;
let settler: RunningSettler | undefined;
let stream: GeneratedStream;
const applied: SettlementMessage[] = [];
const lastSeq = new Map<string, bigint>();

const logger = () => createLogger({ app: 'settler-test', level: ks.config.log_level });

beforeAll(async () => {
  bed = await openTestBed();
  ({ ks, catalog, queues, balances, watermarks } = bed);
  stream = generateStream({ catalog, messages: 3000, users: 60, seed: 11 });
  for (const [shard, seq] of stream.lastSeqByShard) lastSeq.set(shard, seq);
  applied.push(...stream.messages);
  await enqueue(queues, toJobs(stream.messages, 50));
  settler = await startSettler({ config: ks.config, logger: logger(), heartbeatIntervalMs: 500 });
  await waitForWatermarks(watermarks, lastSeq, 60_000);
  // And every job done: a job whose lock lapsed under load comes back and is applied again from
  // its start (writing its rows anew), which would undo the tests' out-of-band changes (seen once
  // in CI: a row deleted behind the settler was back at once).
  await waitForDrained(queues, 60_000);
}, 150_000);

afterAll(async () => {
  await settler?.close();
  await bed?.close();
});

interface StoredRow {
  readonly available: bigint;
  readonly locked: bigint;
  readonly version: bigint;
  /** WRITETIME of the available cell, µs. */
  readonly writeTs: bigint;
}

type Key = readonly [userId: bigint, assetId: number];

const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });

async function readRow([userId, assetId]: Key): Promise<StoredRow | undefined> {
  const row = (
    await q('SELECT available, locked, version, WRITETIME(available) AS wt FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [userId, assetId, SHARD])
  ).first();
  if (row === null) return undefined;
  return { available: row['available'] as bigint, locked: row['locked'] as bigint, version: row['version'] as bigint, writeTs: row['wt'] as bigint };
}

/**
 * Rows of the shard with non-zero values, `count` of them, from distinct users, none written by
 * the shard's last batch (so a change stamped just above a row's own write, see behind(), stays
 * below the settler's next batch).
 */
async function pickRows(count: number, skipUsers: ReadonlySet<bigint>): Promise<Key[]> {
  const picked: Key[] = [];
  const lastBatchTs = (await watermark()).writeTs;
  for (const userId of stream.users) {
    if (skipUsers.has(userId)) continue;
    const rows = (await q('SELECT asset_id, shard, available, locked, WRITETIME(available) AS wt FROM user_balances WHERE user_id = ?', [userId])).rows
      .filter((r) => r['shard'] === SHARD && (r['wt'] as bigint) < lastBatchTs);
    const row = rows.find((r) => (r['available'] as bigint) > 0n && (r['locked'] as bigint) > 0n) ?? rows.find((r) => (r['available'] as bigint) > 0n);
    if (row !== undefined) picked.push([userId, row['asset_id'] as number]);
    if (picked.length === count) return picked;
  }
  throw new Error(`only ${picked.length} rows of ${SHARD} found`);
}

/**
 * The timestamp of a change behind the settler's back. A settler stamps its batches with fenced
 * timestamps far above any wall clock (libs/domain/src/fencing.ts), against which a plain UPDATE
 * would lose: the change is stamped just above the row's own write instead.
 */
async function behind(key: Key): Promise<bigint> {
  return (await readRow(key))!.writeTs + 1n;
}

/** Enqueues a correction as the reconciler does and waits until the settler completed it. */
async function correct(correctionId: string, jobId: string, rows: CorrectionJob['rows']): Promise<void> {
  const queue = queues.get(SHARD)!;
  const payload = encodeBigints<CorrectionJob>({ v: 1, shard: SHARD, correctionId, reconciliationJobId: `rec-${correctionId}`, rows });
  await queue.add(CORRECT_JOB_NAME, payload, { jobId });
  await waitFor(`correction ${jobId}`, async () => (await queue.getJobState(jobId)) === 'completed', 20_000, 50);
}

/** The delta a reconciler computes: expected − stored (a missing row counts as zeros). */
function delta([userId, assetId]: Key, expected: StoredRow, stored: StoredRow | undefined): CorrectionJob['rows'][number] {
  return { userId, assetId, availableDelta: expected.available - (stored?.available ?? 0n), lockedDelta: expected.locked - (stored?.locked ?? 0n) };
}

async function watermark(): Promise<{ lastSeq: bigint; writeTs: bigint }> {
  const wm = (await watermarks.get(SHARD))!;
  return { lastSeq: wm.lastSeq, writeTs: wm.writeTs };
}

async function checkAll(): Promise<void> {
  const expected = expectedBalances(applied, catalog.feeAccountUserId);
  const checked = await expectBalances(balances, expected, [...stream.users, catalog.feeAccountUserId]);
  expect(checked).toBeGreaterThan(stream.users.length);
  await expectConservation(balances, expected.supply);
}

describe('reconciler corrections of rows changed behind the settler', () => {
  const touched = new Set<bigint>();
  /** Rows a correction recreated, with the watermark they were given. */
  const recreated: Array<{ key: Key; version: bigint }> = [];

  it('applies the delta to the stored row, not the cached one, and recreates a deleted row once (warm cache)', async () => {
    await checkAll();
    const [corrupt, deleted] = await pickRows(2, touched);
    for (const [userId] of [corrupt!, deleted!]) touched.add(userId);
    const good = new Map([corrupt!, deleted!].map((k) => [k, undefined as StoredRow | undefined]));
    for (const key of good.keys()) good.set(key, await readRow(key));
    const goodCorrupt = good.get(corrupt!)!;
    const goodDeleted = good.get(deleted!)!;

    // Behind the settler, whose cache keeps the settled values.
    await q('UPDATE user_balances USING TIMESTAMP ? SET available = ?, locked = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [await behind(corrupt!), goodCorrupt.available + 1000n, goodCorrupt.locked - 7n, ...corrupt!, SHARD]);
    await q('DELETE FROM user_balances USING TIMESTAMP ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [await behind(deleted!), ...deleted!, SHARD]);
    const storedCorrupt = await readRow(corrupt!);
    expect(storedCorrupt?.available).toBe(goodCorrupt.available + 1000n);
    expect(await readRow(deleted!)).toBeUndefined();

    const before = await watermark();
    const rows = [delta(corrupt!, goodCorrupt, storedCorrupt), delta(deleted!, goodDeleted, undefined)];
    await correct('warm-1', 'warm-1', rows);

    const after = await watermark();
    // A correction moves the watermark's timestamp on, never its sequence.
    expect(after.lastSeq).toBe(before.lastSeq);
    expect(after.writeTs).toBeGreaterThan(before.writeTs);
    const fixedCorrupt = (await readRow(corrupt!))!;
    const fixedDeleted = (await readRow(deleted!))!;
    expect(fixedCorrupt).toEqual({ available: goodCorrupt.available, locked: goodCorrupt.locked, version: goodCorrupt.version, writeTs: after.writeTs });
    expect(fixedDeleted).toEqual({ available: goodDeleted.available, locked: goodDeleted.locked, version: after.lastSeq, writeTs: after.writeTs });
    recreated.push({ key: deleted!, version: after.lastSeq });

    const record = (await q('SELECT shard, reconciliation_job_id, rows FROM balance_corrections WHERE correction_id = ?', ['warm-1'])).first();
    expect(record?.['shard']).toBe(SHARD);
    expect(record?.['reconciliation_job_id']).toBe('rec-warm-1');
    expect(JSON.parse(record?.['rows'] as string)).toEqual([
      {
        userId: corrupt![0].toString(), assetId: corrupt![1], recreated: false,
        before: { available: storedCorrupt!.available.toString(), locked: storedCorrupt!.locked.toString(), version: goodCorrupt.version.toString() },
        after: { available: goodCorrupt.available.toString(), locked: goodCorrupt.locked.toString(), version: goodCorrupt.version.toString() },
      },
      {
        userId: deleted![0].toString(), assetId: deleted![1], recreated: true,
        before: { available: '0', locked: '0', version: '0' },
        after: { available: goodDeleted.available.toString(), locked: goodDeleted.locked.toString(), version: after.lastSeq.toString() },
      },
    ]);
    await checkAll();

    // Delivered again under another job id (a retried fix run): recorded, so not applied twice.
    await correct('warm-1', 'warm-1-again', rows);
    expect(await readRow(corrupt!)).toEqual(fixedCorrupt);
    expect(await readRow(deleted!)).toEqual(fixedDeleted);
    expect((await watermark()).writeTs).toBe(after.writeTs);
  }, 60_000);

  it('recreates a deleted row with the watermark as version after a restart (cold cache)', async () => {
    await settler!.close();
    settler = await startSettler({ config: ks.config, logger: logger(), heartbeatIntervalMs: 500 });
    const [corrupt, deleted] = await pickRows(2, touched);
    for (const [userId] of [corrupt!, deleted!]) touched.add(userId);
    const goodCorrupt = (await readRow(corrupt!))!;
    const goodDeleted = (await readRow(deleted!))!;
    await q('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [await behind(corrupt!), goodCorrupt.available - 5n, ...corrupt!, SHARD]);
    await q('DELETE FROM user_balances USING TIMESTAMP ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [await behind(deleted!), ...deleted!, SHARD]);

    await correct('cold-1', 'cold-1', [delta(corrupt!, goodCorrupt, await readRow(corrupt!)), delta(deleted!, goodDeleted, undefined)]);

    const wm = await watermark();
    expect(await readRow(corrupt!)).toEqual({ available: goodCorrupt.available, locked: goodCorrupt.locked, version: goodCorrupt.version, writeTs: wm.writeTs });
    expect(await readRow(deleted!)).toEqual({ available: goodDeleted.available, locked: goodDeleted.locked, version: wm.lastSeq, writeTs: wm.writeTs });
    recreated.push({ key: deleted!, version: wm.lastSeq });
    await checkAll();
  }, 60_000);

  it('settles later messages on top of the corrected rows', async () => {
    const more = generateStream({ catalog, messages: 2000, users: 60, seed: 12, firstSeq: stream.nextSeq, firstTradeId: stream.nextTradeId });
    await enqueue(queues, toJobs(more.messages, 50, { prevByShard: new Map(lastSeq) }));
    for (const [shard, seq] of more.lastSeqByShard) lastSeq.set(shard, seq);
    await waitForWatermarks(watermarks, lastSeq, 60_000);
    applied.push(...more.messages);
    // The recreated rows took later messages (their version was the watermark, below them),
    // and every balance is exact: the settler built on the corrected values.
    for (const { key, version } of recreated) expect((await readRow(key))!.version).toBeGreaterThan(version);
    await checkAll();
  }, 90_000);
});
