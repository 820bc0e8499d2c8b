import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, type TestKeyspace } from '@settlement/testing';
import { u64ToCql } from './client.js';
import { NO_USER_ID, ReconciliationReader, ReconciliationStore, TOKEN_MAX, TOKEN_MIN } from './reconciliation.js';

let ks: TestKeyspace;
let reader: ReconciliationReader;
let store: ReconciliationStore;
const USERS = 137;

beforeAll(async () => {
  ks = await createTestKeyspace();
  // History written below in the pre-bucket tables: a keyspace whose backfill is not done, whose readers read them.
  await ks.client.execute("UPDATE history_migration SET done = false WHERE name = 'history_buckets'");
  // A small page size so every read below crosses page boundaries.
  reader = new ReconciliationReader(ks.client, ks.config.scylladb.keyspace, { fetchSize: 3 });
  store = new ReconciliationStore(ks.client, ks.config.scylladb.keyspace);
  const insert = 'INSERT INTO user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?)';
  for (let u = 1; u <= USERS; u += 1) {
    await ks.client.batch(
      [
        { query: insert, params: [BigInt(u), 1, 'funding', BigInt(u) * 10n, 0n, 1n] },
        { query: insert, params: [BigInt(u), 2, 'btc_usdt', -5n, 7n, 2n] },
      ],
      { prepare: true, logged: false },
    );
  }
}, 120_000);

afterAll(async () => {
  await ks?.drop();
});

describe('ReconciliationReader', () => {
  it('reads one user partition and both history tables across pages, with u64 trade ids', async () => {
    const user = 2n ** 60n + 3n;
    const tradeId = 2n ** 64n - 2n;
    for (let seq = 1n; seq <= 7n; seq += 1n) {
      await ks.client.execute(
        'INSERT INTO trades_by_user (user_id, symbol, seq, side, trade_id, buyer_user_id, seller_user_id, base_asset, quote_asset, price, quantity, quote_amount, buyer_refund, seller_refund, buyer_fee, seller_fee, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [user, 'btc_usdt', seq, 'buyer', u64ToCql(tradeId), user, 9n, 1, 2, 100n, 2n ** 62n, 5n, 0n, 0n, 0n, 0n, 1n],
      );
      await ks.client.execute(
        'INSERT INTO ledger_events_by_user (user_id, seq, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [user, seq, seq, 'DEPOSIT', 10n, 2, 0n, 1n],
      );
    }
    const trades = [];
    for await (const t of reader.userTrades(user)) trades.push(t);
    expect(trades.map((t) => t.seq)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    expect(trades[0]).toMatchObject({ userId: user, side: 'buyer', tradeId, buyerUserId: user, quantity: 2n ** 62n, baseAsset: 1, quoteAsset: 2 });
    const events = [];
    for await (const e of reader.userFundingEvents(user)) events.push(e);
    expect(events).toHaveLength(7);
    expect(events[6]).toEqual({ userId: user, seq: 7n, eventType: 'DEPOSIT', amount: 10n, currency: 2 });

    const rows = await reader.userBalanceRows(5n);
    expect(rows).toEqual([
      { userId: 5n, assetId: 1, shard: 'funding', available: 50n, locked: 0n, version: 1n },
      { userId: 5n, assetId: 2, shard: 'btc_usdt', available: -5n, locked: 7n, version: 2n },
    ]);
  });

  it('lists users with history but no balance row, by token range, across pages', async () => {
    const user = 2n ** 60n + 3n;
    const all = await reader.historyUsersInRange(TOKEN_MIN, TOKEN_MAX, 1);
    expect(all).toEqual([user]);
    const token = (await reader.usersAfterToken(TOKEN_MIN, USERS)).at(-1)!.token;
    const inRange = await reader.historyUsersInRange(TOKEN_MIN, token, 1);
    const outOfRange = await reader.historyUsersInRange(token, TOKEN_MAX, 1);
    expect([...inRange, ...outOfRange]).toEqual([user]);
  });

  it('walks every user exactly once by token ranges', async () => {
    const seen: bigint[] = [];
    let after = TOKEN_MIN;
    let pages = 0;
    for (;;) {
      const page = await reader.usersAfterToken(after, 10);
      pages += 1;
      seen.push(...page.map((u) => u.userId));
      if (page.length < 10) break;
      expect(page[page.length - 1]!.token).toBeGreaterThan(after);
      after = page[page.length - 1]!.token;
    }
    expect(pages).toBe(Math.floor(USERS / 10) + 1);
    expect(new Set(seen).size).toBe(USERS);
    expect(seen.length).toBe(USERS);
  });

  it('samples distinct random users, and all of them when asked for more than exist', async () => {
    let state = 12345n;
    const randomToken = () => {
      state = (state * 6364136223846793005n + 1442695040888963407n) & (2n ** 64n - 1n);
      return BigInt.asIntN(64, state);
    };
    const sample = await reader.sampleUsers(40, 4, randomToken);
    expect(sample).toHaveLength(40);
    expect(new Set(sample).size).toBe(40);
    const other = await reader.sampleUsers(40, 4, randomToken);
    expect(other).not.toEqual(sample);
    const everyone = await reader.sampleUsers(1000, 10, randomToken);
    expect(new Set(everyone).size).toBe(USERS);
  });

  it('scans ledger_events and shard watermarks', async () => {
    await ks.client.execute('INSERT INTO ledger_events (seq, user_id, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [1n, 1n, 1n, 'DEPOSIT', 100n, 1, 0n, 1n]);
    await ks.client.execute('INSERT INTO ledger_events (seq, user_id, sequence_id, event_type, amount, currency, related_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [2n, 1n, 2n, 'WITHDRAWAL', 40n, 1, 0n, 1n]);
    const events = [];
    for await (const e of reader.ledgerEvents()) events.push(e);
    expect(events.sort((a, b) => a.eventType.localeCompare(b.eventType))).toEqual([
      { eventType: 'DEPOSIT', amount: 100n, currency: 1 },
      { eventType: 'WITHDRAWAL', amount: 40n, currency: 1 },
    ]);
    await ks.client.execute('INSERT INTO shard_watermarks (shard, last_seq) VALUES (?, ?)', ['funding', 42n]);
    expect(await reader.shardWatermarks()).toEqual(new Map([['funding', 42n]]));
  });
});

describe('ReconciliationStore', () => {
  it('records a run and its findings, system findings with the sentinel key', async () => {
    const startedAt = new Date(Date.now() - 1000);
    await store.saveJob({ jobId: 'j1', trigger: 'manual', mode: 'full', fix: true, status: 'running', startedAt, usersChecked: 0, rowsChecked: 0, errors: 0, durationMs: 0, summary: '{}' });
    expect(await store.getJob('j1')).toMatchObject({ status: 'running', finishedAt: undefined, mode: 'full', fix: true });
    await store.saveJob({ jobId: 'j1', trigger: 'manual', mode: 'full', fix: true, status: 'completed', startedAt, finishedAt: new Date(), usersChecked: 5, rowsChecked: 9, errors: 2, durationMs: 1000, summary: '{"errors":2}' });
    expect(await store.getJob('j1')).toMatchObject({ status: 'completed', usersChecked: 5, rowsChecked: 9, errors: 2, durationMs: 1000, summary: '{"errors":2}' });

    const many = Array.from({ length: 120 }, (_, i) => ({
      finding: {
        kind: 'balance_mismatch' as const, userId: BigInt(i + 1), assetId: 2, shard: 'btc_usdt',
        expectedAvailable: 2n ** 62n, expectedLocked: 0n, actualAvailable: -(2n ** 62n), actualLocked: 1n, version: 9n, message: `row ${i}`,
      },
      fixed: i % 2 === 0,
      detail: { before: { available: -(2n ** 62n) } },
    }));
    await store.recordFindings('j1', [...many, { finding: { kind: 'conservation', assetId: 2, expectedAvailable: 10n, actualAvailable: 11n, actualLocked: 0n, message: 'asset 2 off by 1' }, fixed: false }]);
    const stored = await store.listFindings('j1');
    expect(stored).toHaveLength(121);
    const system = stored.find((f) => f.kind === 'conservation')!;
    expect(system).toMatchObject({ userId: undefined, assetId: 2, shard: undefined, expectedAvailable: 10n, actualAvailable: 11n, expectedLocked: undefined, message: 'asset 2 off by 1', fixed: false });
    const first = stored.find((f) => f.userId === 1n)!;
    expect(first).toMatchObject({ kind: 'balance_mismatch', assetId: 2, shard: 'btc_usdt', expectedAvailable: 2n ** 62n, actualAvailable: -(2n ** 62n), version: 9n, fixed: true, message: 'row 0' });
    expect(first.detail['before']).toEqual({ available: String(-(2n ** 62n)) });
    const raw = await ks.client.execute('SELECT user_id FROM reconciliation_errors WHERE job_id = ? AND user_id = ?', ['j1', NO_USER_ID]);
    expect(raw.rows).toHaveLength(1);
  });
});
