import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, type TestKeyspace } from '@settlement/testing';
import { u64FromCql, u64ToCql } from './client.js';

let ks: TestKeyspace;
beforeAll(async () => {
  ks = await createTestKeyspace();
});
afterAll(async () => {
  await ks?.drop();
});

describe('bigint values through a LOGGED BATCH with USING TIMESTAMP', () => {
  it('round-trips amounts above 2^53 exactly and u64 ids above 2^63', async () => {
    const userId = 2n ** 53n + 1n;
    const available = 2n ** 62n + 12345n;
    const locked = -(2n ** 60n) - 7n;
    const tradeId = 2n ** 64n - 3n;
    const ts = 1_700_000_000_000_000n;
    await ks.client.batch(
      [
        {
          query: 'INSERT INTO user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?',
          params: [userId, 1, 'btc_usdt', available, locked, 9_007_199_254_740_993n, ts],
        },
        {
          query: 'INSERT INTO settled_trades_btc_usdt (trade_id, seq, quantity) VALUES (?, ?, ?) USING TIMESTAMP ?',
          params: [u64ToCql(tradeId), 1n, available, ts],
        },
      ],
      { prepare: true, logged: true },
    );
    const balance = await ks.client.execute('SELECT available, locked, version, WRITETIME(available) AS wt FROM user_balances WHERE user_id = ?', [userId], { prepare: true });
    expect(balance.rows[0]!['available']).toBe(available);
    expect(balance.rows[0]!['locked']).toBe(locked);
    expect(balance.rows[0]!['version']).toBe(9_007_199_254_740_993n);
    expect(balance.rows[0]!['wt']).toBe(ts);

    const trade = await ks.client.execute('SELECT trade_id, quantity FROM settled_trades_btc_usdt WHERE trade_id = ?', [u64ToCql(tradeId)], { prepare: true });
    expect(u64FromCql(trade.rows[0]!['trade_id'] as bigint)).toBe(tradeId);
    expect(trade.rows[0]!['quantity']).toBe(available);
  });

  it('keeps the newer write when an older timestamp arrives later', async () => {
    const q = 'INSERT INTO user_balances (user_id, asset_id, shard, available, locked, version) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?';
    await ks.client.batch([{ query: q, params: [7n, 1, 'funding', 200n, 0n, 2n, 2000n] }], { prepare: true, logged: true });
    await ks.client.batch([{ query: q, params: [7n, 1, 'funding', 100n, 0n, 1n, 1000n] }], { prepare: true, logged: true });
    const row = await ks.client.execute('SELECT available, version FROM user_balances WHERE user_id = 7', [], { prepare: true });
    expect(row.rows[0]!['available']).toBe(200n);
    expect(row.rows[0]!['version']).toBe(2n);
  });
});
