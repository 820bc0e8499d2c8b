/**
 * Full, users and sample runs over a dataset written in the settled layout (no settler needed):
 * paging by token ranges, conservation, corruption found exactly, abandon on abort.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { createLogger, createRedisConnection, createSettlementQueue } from '@settlement/runtime';
import { MarketCatalog } from '@settlement/domain';
import { ReconciliationStore, SequenceGapRepository, DeadLetterRepository } from '@settlement/scylla';
import { reconcileOnce } from '../src/index.js';
import { writeDataset, type DatasetTotals } from './dataset.js';
import { startReferenceCorrector } from './reference-corrector.js';

const USERS = 300;
const PAGE = 37;
let ks: TestKeyspace;
let totals: DatasetTotals;
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });

beforeAll(async () => {
  ks = await createTestKeyspace(testConfig({ reconciliation: { page_size: PAGE, concurrency: 4, history_page_rows: 2 } }));
  totals = await writeDataset({
    client: ks.client,
    keyspace: ks.config.scylladb.keyspace,
    symbols: ks.config.symbols.map((s) => s.name),
    feeAccountUserId: ks.config.fee_account_user_id,
    users: USERS,
    blockUsers: 100,
  });
}, 120_000);

afterAll(async () => {
  await ks?.drop();
});

const run = (request: Parameters<typeof reconcileOnce>[0]['request'], extra: Partial<Parameters<typeof reconcileOnce>[0]> = {}) =>
  reconcileOnce({ config: ks.config, logger, request, ...extra });

type Corruption = { userId: bigint; assetId: number; shard: string; kind: 'balance_mismatch' | 'missing_row'; supplyDiff: bigint };

describe('full run', () => {
  it('pages through every user (and the fee account) and finds nothing wrong in a settled dataset', async () => {
    const pages: number[] = [];
    const summary = await run({ mode: 'full' }, { jobId: 'clean-full', onProgress: (p) => void pages.push(p.usersChecked) });
    expect(summary).toMatchObject({ status: 'completed', errors: 0, warnings: 0, usersChecked: USERS + 1, rereadUsers: 0 });
    // Per user: one funding row and two trade-shard rows; the fee account: base and quote rows.
    expect(summary.rowsChecked).toBe(USERS * 3 + 2);
    expect(summary.conservation?.checked).toBe(true);
    expect(summary.conservation?.assets).toEqual([
      { assetId: 1, available: expect.any(String), locked: expect.any(String), expected: totals.supply.get(1)!.toString(), ok: true },
      { assetId: 2, available: expect.any(String), locked: expect.any(String), expected: totals.supply.get(2)!.toString(), ok: true },
    ]);
    // One progress report per page (9 pages of 37 for 301 users), then the system phase and done.
    expect(pages.slice(0, Math.ceil((USERS + 1) / PAGE))).toEqual(Array.from({ length: Math.ceil((USERS + 1) / PAGE) }, (_, i) => Math.min((i + 1) * PAGE, USERS + 1)));
    const job = await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).getJob('clean-full');
    expect(job).toMatchObject({ status: 'completed', mode: 'full', trigger: 'direct', usersChecked: USERS + 1, errors: 0 });
    expect(JSON.parse(job!.summary)).toMatchObject({ status: 'completed', usersChecked: USERS + 1 });
  });

  it('samples distinct random users', async () => {
    const summary = await run({ mode: 'sample', size: 50 });
    expect(summary).toMatchObject({ status: 'completed', usersChecked: 50, errors: 0 });
  });

  it('finds every corrupted row, with no false positives, in full and users runs', async () => {
    const q = (cql: string, params: unknown[]) => ks.client.execute(cql, params, { prepare: true });
    const rowOf = async (userId: bigint, assetId: number, shard: string) =>
      (await q('SELECT available, locked, version FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [userId, assetId, shard])).first();
    const corruptions: Corruption[] = [];
    const add = async (userId: bigint, assetId: number, shard: string, dAvailable: bigint, dLocked: bigint) => {
      const row = (await rowOf(userId, assetId, shard))!;
      await q('UPDATE user_balances SET available = ?, locked = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [
        (row['available'] as bigint) + dAvailable, (row['locked'] as bigint) + dLocked, userId, assetId, shard,
      ]);
      corruptions.push({ userId, assetId, shard, kind: 'balance_mismatch', supplyDiff: dAvailable + dLocked });
    };
    // Users 1, 3, … buy and 2, 4, … sell. Five users, both assets, both shards; a changed row, a deleted row, a row no history explains.
    await add(3n, 2, 'funding', 12_345n, 0n);
    await add(3n, 1, 'btc_usdt', 0n, 7n);
    await add(52n, 1, 'funding', -3n, 3n);
    await add(121n, 2, 'btc_usdt', 1n, 0n);
    const deleted = (await rowOf(202n, 1, 'btc_usdt'))!;
    await q('DELETE FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', [202n, 1, 'btc_usdt']);
    corruptions.push({ userId: 202n, assetId: 1, shard: 'btc_usdt', kind: 'missing_row', supplyDiff: -((deleted['available'] as bigint) + (deleted['locked'] as bigint)) });
    await q('INSERT INTO user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?)', [299n, 1, 'eth_usdt', 500n, 0n, 3n]);
    corruptions.push({ userId: 299n, assetId: 1, shard: 'eth_usdt', kind: 'balance_mismatch', supplyDiff: 500n });
    // A user whose whole balance partition is gone: only their history says they exist.
    for (const row of (await q('SELECT asset_id, shard, available, locked FROM user_balances WHERE user_id = ?', [150n])).rows) {
      corruptions.push({ userId: 150n, assetId: row['asset_id'] as number, shard: row['shard'] as string, kind: 'missing_row', supplyDiff: -((row['available'] as bigint) + (row['locked'] as bigint)) });
    }
    await q('DELETE FROM user_balances WHERE user_id = ?', [150n]);

    const expectedRows = corruptions.map((c) => `${c.kind}|${c.userId}|${c.assetId}|${c.shard}`).sort();
    const store = new ReconciliationStore(ks.client, ks.config.scylladb.keyspace);

    const full = await run({ mode: 'full' }, { jobId: 'corrupt-full' });
    const fullFindings = await store.listFindings('corrupt-full');
    const rowFindings = (fs: typeof fullFindings) => fs.filter((f) => f.kind === 'balance_mismatch' || f.kind === 'missing_row').map((f) => `${f.kind}|${f.userId}|${f.assetId}|${f.shard}`).sort();
    expect(rowFindings(fullFindings)).toEqual(expectedRows);
    const changed = fullFindings.find((f) => f.userId === 3n && f.assetId === 2)!;
    expect(changed.actualAvailable! - changed.expectedAvailable!).toBe(12_345n);
    // Deleting user 202's trade-shard base row leaves its funding row only: no negative sum there.
    // The user whose funding row moved 3 from available to locked stays non-negative too.
    expect(fullFindings.filter((f) => f.kind === 'negative_balance')).toEqual([]);
    // Conservation is broken by exactly the corruption per asset.
    for (const assetId of [1, 2]) {
      const diff = corruptions.filter((c) => c.assetId === assetId).reduce((s, c) => s + c.supplyDiff, 0n);
      const f = fullFindings.find((x) => x.kind === 'conservation' && x.assetId === assetId);
      if (diff === 0n) expect(f).toBeUndefined();
      else expect(f!.actualAvailable! + f!.actualLocked! - f!.expectedAvailable!).toBe(diff);
    }
    expect(full.errors).toBe(fullFindings.length);
    expect(full.usersChecked).toBe(USERS + 1);
    expect(corruptions.filter((c) => c.userId === 150n)).toHaveLength(3);

    const users = await run({ mode: 'users', userIds: ['3', '52', '121', '150', '202', '299', '7', '8'] }, { jobId: 'corrupt-users' });
    expect(users).toMatchObject({ status: 'completed', usersChecked: 8, errors: corruptions.length });
    expect(rowFindings(await store.listFindings('corrupt-users'))).toEqual(expectedRows);
  });

  it('with fix, sends corrections per shard, waits for them, records before/after, and the next run is clean', async () => {
    const redis = createRedisConnection(ks.config.redis.url);
    const corrector = startReferenceCorrector({ client: ks.client, connection: redis, prefix: ks.config.redis.prefix, shards: new MarketCatalog(ks.config).shards });
    try {
      const fix = await run({ mode: 'full', fix: true }, { jobId: 'fix-full' });
      expect(fix).toMatchObject({ status: 'completed', notFixed: 0 });
      // Corrections go per page and shard: at least one each for funding, btc_usdt and eth_usdt.
      expect(fix.correctionJobs).toBeGreaterThanOrEqual(3);
      expect(fix.correctionJobs).toBeLessThanOrEqual(9);
      const findings = await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).listFindings('fix-full');
      const rows = findings.filter((f) => f.kind === 'balance_mismatch' || f.kind === 'missing_row');
      expect(rows).toHaveLength(9);
      expect(rows.filter((f) => !f.fixed)).toEqual([]);
      const changed = rows.find((f) => f.userId === 3n && f.assetId === 2)!;
      expect(changed.detail['fix']).toMatchObject({ outcome: 'completed', availableDelta: '-12345', before: { available: String(changed.actualAvailable) }, after: { available: String(changed.expectedAvailable) } });
      const after = await run({ mode: 'full' }, { jobId: 'after-fix' });
      expect(after).toMatchObject({ status: 'completed', errors: 0, usersChecked: USERS + 1 });
      expect(after.conservation?.assets.every((a) => a.ok)).toBe(true);
    } finally {
      await corrector.close();
      for (const shard of new MarketCatalog(ks.config).shards) {
        const queue = createSettlementQueue(shard, { connection: redis, prefix: ks.config.redis.prefix });
        await queue.obliterate({ force: true }).catch(() => undefined);
        await queue.close();
      }
      await redis.quit();
    }
  });

  it('records sequence gaps and dead letters as warnings', async () => {
    await new SequenceGapRepository(ks.client, ks.config.scylladb.keyspace).record({ shard: 'btc_usdt', fromSeq: 500n, toSeq: 502n, source: 'ingestor' });
    await new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace).add({ shard: 'funding', source: 'ingestor', reason: 'Invalid funding event: amount: must be positive', field: 'amount', raw: '{}' });
    const summary = await run({ mode: 'full' }, { jobId: 'warnings' });
    expect(summary.byKind).toMatchObject({ sequence_gap: 1, dead_letter: 1 });
    expect(summary.warnings).toBe(2);
    const findings = await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).listFindings('warnings');
    expect(findings.find((f) => f.kind === 'sequence_gap')).toMatchObject({ shard: 'btc_usdt', userId: undefined, message: 'shard btc_usdt: 1 recorded sequence gaps (500-502)' });
    expect(findings.find((f) => f.kind === 'dead_letter')!.message).toContain('amount: must be positive');
  });

  it('stops after the current page when aborted, and records the run as abandoned', async () => {
    const abort = new AbortController();
    const summary = await run({ mode: 'full' }, { jobId: 'abandoned', signal: abort.signal, onProgress: () => abort.abort() });
    expect(summary).toMatchObject({ status: 'abandoned', usersChecked: PAGE });
    expect(summary.conservation).toBeUndefined();
    expect(await new ReconciliationStore(ks.client, ks.config.scylladb.keyspace).getJob('abandoned')).toMatchObject({ status: 'abandoned', usersChecked: PAGE });
  });
});
