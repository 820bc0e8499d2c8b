/**
 * History API and `settle history` against the real Cassandra: every row of a user comes back
 * exactly once across cursor pages, newest first, with u64 ids and amounts as exact decimal
 * strings; symbol and time filters; bad parameters get a 400 (exit 2) naming the field.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, ROOT, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { ExitCode } from '../src/cli/exit-codes.js';
import { HistoryFixture } from './history-fixture.js';
import { startDashboardInProcess, TOKEN, USER, type InProcessDashboard, runSettle } from './support.js';

const ALICE = 201n;
const BOB = 202n;
const T0 = 1_700_000_000_000n;
/** Above 2^63: stored as two's complement, must come back exact. */
const BIG_TRADE_ID = 18_446_744_073_709_551_000n;
const TRADES = 230;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let ks: TestKeyspace;
let dashboard: InProcessDashboard;
let configFile: string;

async function api(pathname: string): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${dashboard.url}${pathname}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: response.status, body: (await response.json()) as Json };
}

const settle = (args: readonly string[]) => runSettle(configFile, args);

async function allPages(first: string): Promise<{ rows: Json[]; pages: number }> {
  const rows: Json[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const sep = first.includes('?') ? '&' : '?';
    const { status, body } = await api(cursor === null ? first : `${first}${sep}cursor=${cursor}`);
    expect(status).toBe(200);
    rows.push(...(body.trades ?? body.events));
    cursor = body.nextCursor;
    pages++;
  } while (cursor !== null);
  return { rows, pages };
}

beforeAll(async () => {
  const config = testConfig({ dashboard: { token: TOKEN, user: USER } });
  ks = await createTestKeyspace(config);
  configFile = writeConfigFile(config, path.join(ROOT, 'data', 'test', config.scylladb.keyspace, 'settlement.yaml'));
  dashboard = await startDashboardInProcess(config);
  const fixture = new HistoryFixture(ks.client, config);
  // Alice buys from Bob: 200 btc_usdt trades one second apart, 30 eth_usdt; one with a u64 id.
  for (let block = 0; block < 200; block += 50) {
    await fixture.trades(
      'btc_usdt',
      Array.from({ length: 50 }, (_, i) => {
        const n = BigInt(block + i);
        return { tradeId: n === 0n ? BIG_TRADE_ID : 1000n + n, buyerUserId: ALICE, sellerUserId: BOB, price: 30_000_000_000n, quantity: 1_000n + n, quoteAmount: 300_000n + n * 300n, buyerFee: 1n, settledAt: T0 + n * 1000n };
      }),
    );
  }
  await fixture.trades(
    'eth_usdt',
    Array.from({ length: TRADES - 200 }, (_, i) => ({ tradeId: 5000n + BigInt(i), buyerUserId: ALICE, sellerUserId: BOB, price: 2_000_000_000n, quantity: 10n, quoteAmount: 200n, settledAt: T0 + BigInt(i) * 1000n + 500n })),
  );
  await fixture.funding([
    { userId: ALICE, type: 'DEPOSIT', amount: 9_223_372_036_854_775_807n, currency: 2, createdAt: T0 - 10n },
    { userId: ALICE, type: 'LOCK', amount: 5n, currency: 2, createdAt: T0 - 5n },
    { userId: ALICE, type: 'WITHDRAWAL', amount: 1n, currency: 2, createdAt: T0 - 1n },
  ]);
}, 60_000);

afterAll(async () => {
  await dashboard?.close();
  await ks?.drop();
});

describe('GET /v1/users/:id/trades', () => {
  it('pages through every row once, 100 at a time, with exact decimal strings', async () => {
    const { rows, pages } = await allPages(`/v1/users/${ALICE}/trades?limit=100`);
    expect(pages).toBe(3);
    expect(rows).toHaveLength(TRADES);
    expect(new Set(rows.map((r) => `${r.symbol}/${r.seq}/${r.side}`)).size).toBe(TRADES);
    expect(rows.every((r) => r.side === 'buyer' && r.userId === '201')).toBe(true);
    const big = rows.find((r) => r.tradeId === BIG_TRADE_ID.toString());
    expect(big).toMatchObject({ symbol: 'btc_usdt', seq: '1', price: '30000000000', quantity: '1000', quoteAmount: '300000', buyerFee: '1', settledAt: T0.toString() });
    expect(big.settledAtIso).toBe('2023-11-14T22:13:20.000Z');
    expect(big.display).toEqual({ price: '30000.000000', quantity: '0.00001000', quoteAmount: '0.300000' });
  });

  it('filters by symbol and by time range (inclusive), still paged', async () => {
    const eth = await allPages(`/v1/users/${BOB}/trades?symbol=eth_usdt&limit=7`);
    expect(eth.rows).toHaveLength(TRADES - 200);
    expect(eth.rows.every((r) => r.symbol === 'eth_usdt' && r.side === 'seller')).toBe(true);

    // btc trades at T0 + 10 s … T0 + 19 s, eth trades at T0 + 10.5 s … T0 + 19.5 s: 10 + 10.
    const from = T0 + 10_000n;
    const to = new Date(Number(T0 + 19_999n)).toISOString();
    const window = await allPages(`/v1/users/${ALICE}/trades?from=${from}&to=${to}&limit=6`);
    expect(window.rows).toHaveLength(20);
    expect(window.rows.every((r) => BigInt(r.settledAt) >= from && BigInt(r.settledAt) <= T0 + 19_999n)).toBe(true);

    const none = await api(`/v1/users/999/trades`);
    expect(none.body).toEqual({ userId: '999', trades: [], nextCursor: null });
  });

  it('rejects bad parameters with 400 naming the field', async () => {
    const cases: Array<[string, string, string]> = [
      ['/v1/users/x/trades', 'userId', 'must be a decimal user id'],
      [`/v1/users/${ALICE}/trades?symbol=doge`, 'symbol', 'must be a configured symbol'],
      [`/v1/users/${ALICE}/trades?limit=0`, 'limit', 'must be an integer from 1 to 1000'],
      [`/v1/users/${ALICE}/trades?limit=5000`, 'limit', 'must be an integer from 1 to 1000'],
      [`/v1/users/${ALICE}/trades?from=yesterday`, 'from', 'must be milliseconds since the epoch or an ISO-8601'],
      [`/v1/users/${ALICE}/trades?from=20&to=10`, 'from', 'must not be after to'],
      [`/v1/users/${ALICE}/trades?cursor=!!`, 'cursor', 'must be the nextCursor of a previous page'],
      [`/v1/users/${ALICE}/trades?colour=red`, '(root)', 'colour'],
      [`/v1/users/${ALICE}/ledger?symbol=btc_usdt`, '(root)', 'symbol'],
    ];
    for (const [url, field, message] of cases) {
      const { status, body } = await api(url);
      expect(status, url).toBe(400);
      expect(body.error.field, url).toBe(field);
      expect(body.error.message, url).toContain(message);
    }
    // A cursor of another user's query is refused, not followed.
    const first = await api(`/v1/users/${ALICE}/trades?limit=1`);
    const stolen = await api(`/v1/users/${BOB}/trades?limit=1&cursor=${first.body.nextCursor}`);
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toMatchObject({ field: 'cursor', message: expect.stringContaining('belongs to another query') });
  });
});

describe('GET /v1/users/:id/ledger', () => {
  it('returns funding events newest first, amounts exact', async () => {
    const { rows, pages } = await allPages(`/v1/users/${ALICE}/ledger?limit=2`);
    expect(pages).toBe(2);
    expect(rows.map((r) => [r.eventType, r.amount, r.asset])).toEqual([
      ['WITHDRAWAL', '1', 'USDT'],
      ['LOCK', '5', 'USDT'],
      ['DEPOSIT', '9223372036854775807', 'USDT'],
    ]);
    expect(rows[2].display.amount).toBe('9223372036854.775807');
  });
});

describe('settle history', () => {
  it('prints a table with a command for the next page, or JSON', async () => {
    const table = await settle(['history', ALICE.toString(), '--symbol', 'eth_usdt', '--limit', '5']);
    expect(table.code, table.stderr).toBe(ExitCode.OK);
    expect(table.stdout).toMatch(/^eth_usdt\s+30\s+buyer\s+5029\s+2023-11-14T22:13:49\.500Z\s+2000\.000000\s+0\.00000010\s+0\.000200\s+0\/0$/m);
    expect(table.stdout).toMatch(/^more: settle history 201 --symbol eth_usdt --limit 5 --cursor [A-Za-z0-9_-]+$/m);

    const json = await settle(['--json', 'history', ALICE.toString(), '--ledger']);
    expect(json.code, json.stderr).toBe(ExitCode.OK);
    const body = JSON.parse(json.stdout) as Json;
    expect(body.events.map((e: Json) => e.amount)).toEqual(['1', '5', '9223372036854775807']);
    expect(body.nextCursor).toBeNull();
  });

  it('exits 2 naming the field for bad input', async () => {
    const bad = await settle(['history', ALICE.toString(), '--limit', 'lots']);
    expect(bad.code).toBe(ExitCode.USAGE);
    expect(bad.stderr).toContain('limit: must be an integer from 1 to 1000');
    const ledger = await settle(['history', ALICE.toString(), '--ledger', '--symbol', 'btc_usdt']);
    expect(ledger.code).toBe(ExitCode.USAGE);
    expect(ledger.stderr).toContain('symbol: applies to trades, not to --ledger');
  });
});
