/**
 * Bucketed history (issue 20.2) against the real Cassandra, with 16 sequences a bucket: the fee
 * account's rows spread over many partitions, the history reader and a full reconciliation on
 * the bucketed layout; and a keyspace upgraded from the pre-bucket layout, its backfill
 * interrupted, resumed while more is settled (dual writes), run again (a no-op), then readers
 * switched and everything still reconciling.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type cassandra from 'cassandra-driver';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { createLogger } from '@settlement/runtime';
import { HistoryBackfill, HistoryLayoutRepository, ReconciliationReader, UserHistoryReader, type HistoryPosition, type UserTrade } from '@settlement/scylla';
import { reconcileOnce } from '../src/index.js';
import { writeDataset } from './dataset.js';

const BUCKET = 16n;
const logger = createLogger({ app: 'reconciler-test', level: process.env.TEST_LOG_LEVEL ?? 'warn' });
const keyspaces: TestKeyspace[] = [];

afterAll(async () => {
  for (const ks of keyspaces) await ks.drop();
});

async function keyspace(): Promise<TestKeyspace> {
  const ks = await createTestKeyspace(testConfig({ scylladb: { history_bucket_seqs: 16 }, reconciliation: { page_size: 50, concurrency: 4, history_page_rows: 5 } }));
  keyspaces.push(ks);
  return ks;
}

const q = (ks: TestKeyspace, cql: string, params: unknown[] = []) => ks.client.execute(cql, params, { prepare: true, fetchSize: 100_000 });

/** Every row of a table as a sorted list of strings of `columns`. */
async function rowsOf(ks: TestKeyspace, table: string, columns: string): Promise<string[]> {
  const out: string[] = [];
  const result = await ks.client.execute(`SELECT ${columns} FROM ${table}`, [], { prepare: true, fetchSize: 1000 });
  for await (const row of result) out.push(columns.split(', ').map((c) => String((row as cassandra.types.Row)[c.replace(/.* AS /, '')])).join('|'));
  return out.sort();
}

const TRADE_COLUMNS = 'user_id, symbol, seq, side, trade_id, buyer_user_id, seller_user_id, base_asset, quote_asset, price, quantity, quote_amount, buyer_refund, seller_refund, buyer_fee, seller_fee, settled_at, writetime(trade_id) AS w';
const LEDGER_COLUMNS = 'user_id, seq, sequence_id, event_type, amount, currency, related_id, created_at, writetime(event_type) AS w';

async function allTrades(reader: UserHistoryReader, userId: bigint, limit: number): Promise<{ rows: UserTrade[]; positions: HistoryPosition[] }> {
  const rows: UserTrade[] = [];
  const positions: HistoryPosition[] = [];
  let position: HistoryPosition | undefined;
  do {
    const page = await reader.tradesPage(userId, { limit, position });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    rows.push(...page.items);
    position = page.next;
    if (position !== undefined) positions.push(position);
  } while (position !== undefined);
  return { rows, positions };
}

describe('bucketed history', () => {
  it('spreads the fee account over many partitions; the reader pages them newest first and a full run finds nothing wrong', async () => {
    const ks = await keyspace();
    const name = ks.config.scylladb.keyspace;
    const fee = ks.config.fee_account_user_id;
    expect(await new HistoryLayoutRepository(ks.client, name).state()).toMatchObject({ done: true });
    await writeDataset({ client: ks.client, keyspace: name, symbols: ks.config.symbols.map((s) => s.name), feeAccountUserId: fee, users: 300, blockUsers: 100, history: { bucketSeqs: BUCKET, dualWrite: false } });
    // Nothing in the pre-bucket tables of a new keyspace.
    expect((await q(ks, 'SELECT user_id FROM trades_by_user LIMIT 1')).rows).toHaveLength(0);

    const indexBuckets = (await q(ks, 'SELECT bucket FROM user_history_buckets WHERE user_id = ? AND stream = ?', [fee, 'btc_usdt'])).rows.map((r) => r['bucket'] as bigint);
    const partitions = (await q(ks, 'SELECT DISTINCT user_id, symbol, bucket FROM user_trades')).rows.filter((r) => r['user_id'] === fee).map((r) => r['bucket'] as bigint);
    expect(indexBuckets.length).toBeGreaterThanOrEqual(9);
    expect([...partitions].sort((a, b) => (a < b ? 1 : -1))).toEqual(indexBuckets);
    for (const bucket of indexBuckets) {
      const rows = (await q(ks, 'SELECT seq FROM user_trades WHERE user_id = ? AND symbol = ? AND bucket = ?', [fee, 'btc_usdt', bucket])).rows;
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThanOrEqual(Number(BUCKET));
      for (const r of rows) expect((r['seq'] as bigint) / BUCKET).toBe(bucket);
    }

    const reader = new UserHistoryReader(ks.client, name, ks.config.symbols.map((s) => s.name));
    const { rows, positions } = await allTrades(reader, fee, 7);
    expect(rows.length).toBe(75);
    expect(rows.every((r) => r.side === 'fee')).toBe(true);
    const seqs = rows.map((r) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? 1 : -1)));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(positions.every((p) => p['l'] === 'b')).toBe(true);
    const ledger = await reader.ledgerPage(3n, { limit: 10 });
    expect(ledger.items.map((e) => e.eventType)).toEqual(['LOCK', 'DEPOSIT']);
    expect(ledger.next).toBeUndefined();

    const summary = await reconcileOnce({ config: ks.config, logger, request: { mode: 'full' }, jobId: 'bucketed-full' });
    expect(summary).toMatchObject({ status: 'completed', errors: 0, usersChecked: 301 });
  }, 120_000);

  it('backfills a pre-bucket keyspace while settling: interrupted, resumed, run again as a no-op; readers switch and it reconciles', async () => {
    const ks = await keyspace();
    const name = ks.config.scylladb.keyspace;
    const fee = ks.config.fee_account_user_id;
    const layout = new HistoryLayoutRepository(ks.client, name);
    // An upgraded keyspace: the backfill is not done, settlers write both layouts.
    await q(ks, "UPDATE history_migration SET done = false, done_at = null WHERE name = 'history_buckets'");
    expect(await layout.writeMode(BUCKET)).toEqual({ bucketSeqs: BUCKET, dualWrite: true });
    expect(await new ReconciliationReader(ks.client, name).historyUsersInRange(-(2n ** 63n), 2n ** 63n - 1n, 10)).toEqual([]);

    const backfill = new HistoryBackfill(ks.client, name);
    const runs: Array<Awaited<ReturnType<HistoryBackfill['run']>>> = [];
    await writeDataset({
      client: ks.client, keyspace: name, symbols: ks.config.symbols.map((s) => s.name), feeAccountUserId: fee, users: 400, blockUsers: 50,
      history: { bucketSeqs: BUCKET, dualWrite: true },
      onBlock: async (usersWritten) => {
        if (usersWritten === 200) {
          // What was settled before the upgrade: the old layout only.
          for (const table of ['user_trades', 'user_ledger', 'user_history_buckets']) await q(ks, `TRUNCATE ${table}`);
        } else if (usersWritten > 200) {
          // Settling goes on (dual writes) while the backfill runs a few pages at a time.
          runs.push(await backfill.run({ pageRows: 40, pagesMax: 2 }));
        }
      },
    });
    expect(runs.map((r) => [r.complete, r.pages])).toEqual([[false, 2], [false, 2], [false, 2], [false, 2]]);
    expect(runs.slice(1).every((r) => r.resumed)).toBe(true);
    // Not done: readers still read the old tables.
    const before = await allTrades(new UserHistoryReader(ks.client, name, ['btc_usdt']), 7n, 5);
    expect(before.positions.every((p) => p['l'] === undefined)).toBe(true);

    const rest = await backfill.run({ pageRows: 40 });
    expect(rest).toMatchObject({ complete: true, resumed: true, alreadyDone: false });
    const again = await backfill.run({ pageRows: 40 });
    expect(again).toMatchObject({ alreadyDone: true, complete: true, rowsThisRun: 0, rowsCopied: rest.rowsCopied });
    await expect(backfill.run({ pageRows: 40, restart: true })).rejects.toThrow(/done/);
    expect(await layout.state()).toMatchObject({ done: true });

    // Every old row is in the bucketed tables, with its values and its write time, and nothing else.
    expect(await rowsOf(ks, 'user_trades', TRADE_COLUMNS)).toEqual(await rowsOf(ks, 'trades_by_user', TRADE_COLUMNS));
    expect(await rowsOf(ks, 'user_ledger', LEDGER_COLUMNS)).toEqual(await rowsOf(ks, 'ledger_events_by_user', LEDGER_COLUMNS));
    const bucketsOfRows = new Set((await rowsOf(ks, 'user_trades', 'user_id, symbol, bucket')).concat((await rowsOf(ks, 'user_ledger', 'user_id, bucket')).map((r) => r.replace('|', '|funding|'))));
    expect(new Set(await rowsOf(ks, 'user_history_buckets', 'user_id, stream, bucket'))).toEqual(bucketsOfRows);

    // Readers switched: the history reader pages the buckets, the reconciler lists users from the index.
    const after = await allTrades(new UserHistoryReader(ks.client, name, ['btc_usdt']), 7n, 5);
    expect(after.positions.every((p) => p['l'] === 'b')).toBe(true);
    expect(after.rows).toEqual(before.rows);
    const feeTrades = await allTrades(new UserHistoryReader(ks.client, name, ['btc_usdt']), fee, 9);
    expect(feeTrades.rows).toHaveLength(104);
    expect(await new ReconciliationReader(ks.client, name).historyUsersInRange(-(2n ** 63n), 2n ** 63n - 1n, 37)).toHaveLength(401);
    // Settlers stop writing the old tables once the grace after done has passed.
    expect(await layout.writeMode(BUCKET, Date.now() + 60_000)).toEqual({ bucketSeqs: BUCKET, dualWrite: false });

    const summary = await reconcileOnce({ config: ks.config, logger, request: { mode: 'full' }, jobId: 'after-backfill' });
    expect(summary).toMatchObject({ status: 'completed', errors: 0, usersChecked: 401 });
  }, 180_000);
});
