/**
 * `settle export` against the real Cassandra: each format (CSV, JSON lines, Parquet) read back
 * with an independent reader (csv-parse, JSON.parse, hyparquet) and compared row by row with the
 * table read straight from Cassandra — u64 ids above 2^63 and amounts near 2^63 exact; a time
 * range; an export stopped after a few pages, with junk after its last checkpoint (a killed
 * writer), resumed to the same rows; a balance snapshot with row versions and shard watermarks.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementConfig } from '@settlement/config';
import { ExportReader } from '@settlement/scylla';
import { createTestKeyspace, ROOT, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { ExitCode } from '../src/cli/exit-codes.js';
import { exportTrades, partialPath, statePath, TRADE_EXPORT_COLUMNS } from '../src/ops/exports.js';
import type { ExportFormat } from '../src/ops/export-sinks.js';
import { HistoryFixture } from './history-fixture.js';
import { runSettle } from './support.js';

const T0 = 1_700_000_000_000n;
const TRADES = 1_234;
const I64_MAX = 2n ** 63n - 1n;

let ks: TestKeyspace;
let config: Readonly<SettlementConfig>;
let configFile: string;
let dir: string;

const settle = (args: readonly string[]) => runSettle(configFile, args);

/** settled_trades_btc_usdt read straight from Cassandra, every column as the export writes it. */
async function tradesInCassandra(): Promise<Map<string, Record<string, string | number>>> {
  const u64 = (v: unknown) => BigInt.asUintN(64, v as bigint).toString();
  const s = (v: unknown) => (v as bigint).toString();
  const out = new Map<string, Record<string, string | number>>();
  const result = await ks.client.execute(`SELECT * FROM settled_trades_btc_usdt`, [], { fetchSize: 500 });
  for await (const r of result) {
    const row = {
      symbol: 'btc_usdt', trade_id: u64(r['trade_id']), seq: s(r['seq']), buy_order_id: u64(r['buy_order_id']), sell_order_id: u64(r['sell_order_id']),
      buyer_user_id: s(r['buyer_user_id']), seller_user_id: s(r['seller_user_id']), price: s(r['price']), quantity: s(r['quantity']), quote_amount: s(r['quote_amount']),
      base_asset: r['base_asset'] as number, quote_asset: r['quote_asset'] as number, buyer_refund: s(r['buyer_refund']), seller_refund: s(r['seller_refund']),
      buyer_fee: s(r['buyer_fee']), seller_fee: s(r['seller_fee']), match_seq: u64(r['match_seq']), output_sequence: u64(r['output_sequence']), settled_at: u64(r['settled_at']),
      buyer_quote_version: u64(r['buyer_quote_version']), buyer_base_version: u64(r['buyer_base_version']), seller_base_version: u64(r['seller_base_version']),
      seller_quote_version: u64(r['seller_quote_version']),
    };
    out.set(row.trade_id, row);
  }
  return out;
}

async function readBack(format: ExportFormat, file: string): Promise<Array<Record<string, unknown>>> {
  if (format === 'csv') return parseCsv(readFileSync(file, 'utf8'), { columns: true }) as Array<Record<string, string>>;
  if (format === 'jsonl') return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
  return (await parquetReadObjects({ file: await asyncBufferFromFile(file) })) as Array<Record<string, unknown>>;
}

/** Exported rows equal Cassandra's, row by row (CSV has no types: asset ids compare as text). */
function expectSameRows(format: ExportFormat, rows: Array<Record<string, unknown>>, expected: Map<string, Record<string, string | number>>): void {
  expect(rows).toHaveLength(expected.size);
  const seen = new Set<string>();
  for (const row of rows) {
    const id = String(row['trade_id']);
    expect(seen.has(id), `trade ${id} exported twice`).toBe(false);
    seen.add(id);
    const want = expected.get(id);
    expect(want, `trade ${id} is not in Cassandra`).toBeDefined();
    const normalized = format === 'csv' ? Object.fromEntries(Object.entries(want!).map(([k, v]) => [k, String(v)])) : want;
    expect(row).toEqual(normalized);
  }
  expect(Object.keys(rows[0]!)).toEqual(TRADE_EXPORT_COLUMNS.map((c) => c.name));
}

beforeAll(async () => {
  config = testConfig();
  ks = await createTestKeyspace(config);
  dir = path.join(ROOT, 'data', 'test', config.scylladb.keyspace);
  mkdirSync(dir, { recursive: true });
  configFile = writeConfigFile(config, path.join(dir, 'settlement.yaml'));
  const fixture = new HistoryFixture(ks.client, config);
  for (let block = 0; block < TRADES; block += 100) {
    await fixture.trades(
      'btc_usdt',
      Array.from({ length: Math.min(100, TRADES - block) }, (_, i) => {
        const n = BigInt(block + i);
        // Every third id above 2^63; amounts up to 2^63-1.
        return {
          tradeId: n % 3n === 0n ? 2n ** 64n - 1n - n : 10_000n + n, buyerUserId: 1n + (n % 7n), sellerUserId: 100n + (n % 5n),
          price: I64_MAX - n, quantity: n + 1n, quoteAmount: I64_MAX - 2n * n, buyerFee: n % 2n, sellerFee: 3n, settledAt: T0 + n * 1000n,
        };
      }),
    );
  }
  await fixture.trades('eth_usdt', [{ tradeId: 1n, buyerUserId: 1n, sellerUserId: 2n, price: 1n, quantity: 1n, quoteAmount: 1n, settledAt: T0 }]);
  await fixture.balances('btc_usdt', [
    { userId: 1n, assetId: 1, available: I64_MAX, locked: -5n, version: 1_234n },
    { userId: 2n, assetId: 2, available: 7n, locked: 0n, version: 17n },
  ]);
  await fixture.balances('funding', [{ userId: 1n, assetId: 1, available: 1n, locked: 2n, version: 3n }]);
}, 120_000);

afterAll(async () => {
  await ks?.drop();
});

describe('settle export trades', () => {
  for (const format of ['csv', 'jsonl', 'parquet'] as const) {
    it(`${format}: every row equals Cassandra's, exact`, async () => {
      const out = path.join(dir, `trades.${format}`);
      const run = await settle(['export', 'trades', '--symbol', 'btc_usdt', '--format', format, '--out', out, '--page-rows', '200']);
      expect(run.code, run.stderr).toBe(ExitCode.OK);
      expect(run.stdout).toContain(`exported ${TRADES} trades to ${out}`);
      expect(run.stderr).toMatch(/100% 1234 rows written/);
      expect(existsSync(statePath(out)) || existsSync(partialPath(out))).toBe(false);
      expectSameRows(format, await readBack(format, out), await tradesInCassandra());
      if (format === 'parquet') {
        const meta = await parquetMetadataAsync(await asyncBufferFromFile(out));
        expect(meta.row_groups.length).toBe(Math.ceil(TRADES / 200));
        expect(meta.num_rows).toBe(BigInt(TRADES));
      }
    });
  }

  it('filters on settled_at (inclusive)', async () => {
    const out = path.join(dir, 'window.jsonl');
    const run = await settle(['export', 'trades', '--symbol', 'btc_usdt', '--from', String(T0 + 100_000n), '--to', new Date(Number(T0 + 199_000n)).toISOString(), '--format', 'jsonl', '--out', out]);
    expect(run.code, run.stderr).toBe(ExitCode.OK);
    const all = await tradesInCassandra();
    const want = new Map([...all].filter(([, r]) => BigInt(r['settled_at'] as string) >= T0 + 100_000n && BigInt(r['settled_at'] as string) <= T0 + 199_000n));
    expect(want.size).toBe(100);
    expectSameRows('jsonl', await readBack('jsonl', out), want);
  });

  for (const format of ['csv', 'parquet'] as const) {
    it(`${format}: stopped after 3 pages with junk past its checkpoint, resumed, same rows`, async () => {
      const out = path.join(dir, `resumed.${format}`);
      const reader = new ExportReader(ks.client, config.scylladb.keyspace, config.symbols.map((s) => s.name));
      const first = await exportTrades(reader, { symbol: 'btc_usdt' }, { format, out, pageRows: 150, pagesMax: 3 });
      expect(first).toMatchObject({ complete: false, rows: 450, resumed: false });
      // A writer killed mid-page leaves bytes after the checkpoint; the resume cuts them off.
      appendFileSync(partialPath(out), format === 'csv' ? '99,half a row' : 'garbage');
      const other = await settle(['export', 'trades', '--symbol', 'eth_usdt', '--format', format, '--out', out]);
      expect(other.code).toBe(ExitCode.USAGE);
      expect(other.stderr).toContain('out: ');
      expect(other.stderr).toContain('--restart');
      const rest = await settle(['export', 'trades', '--symbol', 'btc_usdt', '--format', format, '--out', out, '--page-rows', '150']);
      expect(rest.code, rest.stderr).toBe(ExitCode.OK);
      expect(rest.stdout).toContain(`exported ${TRADES} trades to ${out} (resumed)`);
      expectSameRows(format, await readBack(format, out), await tradesInCassandra());
    });
  }

  it('rejects bad arguments naming the field', async () => {
    const format = await settle(['export', 'trades', '--symbol', 'btc_usdt', '--format', 'xlsx', '--out', path.join(dir, 'x')]);
    expect(format.code).toBe(ExitCode.USAGE);
    expect(format.stderr).toContain('format: must be one of csv, jsonl, parquet');
    const symbol = await settle(['export', 'trades', '--format', 'csv', '--out', path.join(dir, 'x')]);
    expect(symbol.code).toBe(ExitCode.USAGE);
    expect(symbol.stderr).toContain('symbol');
  });
});

describe('settle export balances', () => {
  it('writes every balance row with its version and the shard watermark', async () => {
    const out = path.join(dir, 'balances.csv');
    const run = await settle(['export', 'balances', '--format', 'csv', '--out', out]);
    expect(run.code, run.stderr).toBe(ExitCode.OK);
    const rows = (parseCsv(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>).sort((a, b) => `${a['user_id']}${a['shard']}`.localeCompare(`${b['user_id']}${b['shard']}`));
    const stored = await ks.client.execute('SELECT user_id, asset_id, shard, available, locked, version FROM user_balances');
    expect(rows).toHaveLength(stored.rows.length);
    for (const r of stored.rows) {
      const match = rows.find((x) => x['user_id'] === String(r['user_id']) && x['shard'] === r['shard'] && x['asset_id'] === String(r['asset_id']));
      expect(match).toMatchObject({ available: String(r['available']), frozen: String(r['locked']), version: String(r['version']) });
    }
    expect(rows.find((x) => x['user_id'] === '1' && x['shard'] === 'btc_usdt')).toEqual({
      user_id: '1', asset_id: '1', asset: 'BTC', shard: 'btc_usdt', available: I64_MAX.toString(), frozen: '-5', version: '1234', shard_watermark: '0',
    });
    expect(rows.find((x) => x['shard'] === 'funding')!['shard_watermark']).toBe('0');
  });
});
