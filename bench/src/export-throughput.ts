/**
 * npm run bench:export — `settle export trades` on N settled trades (default 100,000), once per
 * format (csv, jsonl, parquet), through the command's own code (exportTrades of
 * apps/dashboard/src/ops/exports.ts with the ExportReader it builds, default page of 5,000 rows),
 * in process: rows/s, bytes written, the CPU it took, and the growth of the process's resident
 * memory over the export (bounded: one page in memory whatever N). Next to them, 'read only': the
 * same pages read through the ExportReader and dropped, what the export costs before any file.
 *
 * The trades are written first, untimed, into a fresh keyspace (`bench_export_<hex>`, every
 * migration applied, dropped at the end unless --keep) with the settler's own statements
 * (SettlementWriter.buildStatements: the trade row, each party's history row and bucket index,
 * the watermark), in unlogged batches of 40 with 8 in flight, as apps/reconciler/test/dataset.ts
 * writes its fixture. Each export's file is read back for its row count (CSV and JSON lines by
 * lines, Parquet by its footer): a wrong count exits 1, a broken run cannot look fast.
 *
 * Needs Cassandra (`npm run stack:up`). Flags: USAGE (`--help`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { loadConfig, parseConfig } from '@settlement/config';
import { EXPORT_FORMATS, EXPORT_PAGE_ROWS_DEFAULT, exportTrades, type ExportFormat } from '@settlement/dashboard';
import { MarketCatalog, type TradeMessage } from '@settlement/domain';
import { ExportReader, SettlementWriter, createScyllaClient, migrate, scyllaOptionsFromConfig, type CqlStatement } from '@settlement/scylla';
import { Rng } from '@settlement/simulator';
import { parseScriptArgs, ROOT } from '@settlement/tools';
import { collectGarbage } from './bench-step.js';
import { formatTable } from './table.js';

const USAGE = `
npm run bench:export [-- FLAGS]: settle export trades of N settled trades as csv, jsonl and parquet

  --trades 100000              settled trades written first (untimed) into a fresh keyspace
  --formats csv,jsonl,parquet  formats exported, one after the other
  --symbol btc_usdt            the symbol whose trades are written and exported
  --page-rows ${EXPORT_PAGE_ROWS_DEFAULT}             rows per page read (and per Parquet row group), as --page-rows
  --users 2000                 users trading (ids 1..N); 30 % of the trades pay fees
  --keep                       keep the keyspace and the exported files (data/bench/export)
  -h, --help                   this text
`;

const flags = parseScriptArgs(USAGE, {
  trades: { type: 'string', default: '100000' },
  formats: { type: 'string', default: EXPORT_FORMATS.join(',') },
  symbol: { type: 'string', default: 'btc_usdt' },
  'page-rows': { type: 'string', default: String(EXPORT_PAGE_ROWS_DEFAULT) },
  users: { type: 'string', default: '2000' },
  keep: { type: 'boolean', default: false },
});

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
function intFlag(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) fail(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return Number(raw);
}
const tradeCount = intFlag('trades', flags.trades, 1, 10_000_000);
const pageRows = intFlag('page-rows', flags['page-rows'], 1, 100_000);
const userCount = intFlag('users', flags.users, 2, 1_000_000);
const formats = flags.formats.split(',') as ExportFormat[];
for (const f of formats) if (!EXPORT_FORMATS.includes(f)) fail(`--formats must name ${EXPORT_FORMATS.join(', ')}, got "${f}"`);

const base = loadConfig({ cwd: ROOT });
const catalog = new MarketCatalog(base);
const market = catalog.markets.get(flags.symbol) ?? fail(`--symbol must be one of ${[...catalog.markets.keys()].join(', ')}, got "${flags.symbol}"`);
const keyspace = `bench_export_${randomBytes(3).toString('hex')}`;
const config = parseConfig({
  ...JSON.parse(JSON.stringify(base, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))),
  scylladb: { ...base.scylladb, keyspace },
  log_level: 'warn',
});
const outDir = path.join(config.data_dir, 'bench', 'export');
const say = (message: string): void => void process.stdout.write(`${message}\n`);
const MB = 1024 * 1024;


/** Trades of the symbol between random users, 30 % with fees, amounts of realistic widths. */
function tradesOf(from: number, count: number, rng: Rng): TradeMessage[] {
  const out: TradeMessage[] = [];
  const settledAt0 = 1_764_000_000_000n;
  for (let i = from; i < from + count; i++) {
    const seq = BigInt(i + 1);
    const buyer = BigInt(1 + Math.floor(rng.next() * userCount));
    let seller = BigInt(1 + Math.floor(rng.next() * userCount));
    if (seller === buyer) seller = (seller % BigInt(userCount)) + 1n;
    const price = 2_800_000_000_000n + BigInt(Math.floor(rng.next() * 1e11));
    const quantity = BigInt(1 + Math.floor(rng.next() * 1e8));
    const quoteAmount = (price * quantity) / market.quoteDivisor;
    const fees = rng.next() < 0.3;
    out.push({
      kind: 'trade', shard: flags.symbol, seq, tradeId: 9_000_000_000n + seq, buyOrderId: 20_000_000_000n + 2n * seq, sellOrderId: 20_000_000_001n + 2n * seq,
      buyerUserId: buyer, sellerUserId: seller, price, quantity, quoteAmount, baseAsset: market.baseAsset, quoteAsset: market.quoteAsset,
      buyerRefund: BigInt(Math.floor(rng.next() * 1e6)), sellerRefund: 0n, buyerFee: fees ? quantity / 1000n : 0n, sellerFee: fees ? quoteAmount / 1000n : 0n,
      matchSeq: seq, outputSequence: seq, settledAt: settledAt0 + seq * 7n,
      buyerQuoteVersion: 2n * seq, buyerBaseVersion: 2n * seq + 1n, sellerBaseVersion: 2n * seq, sellerQuoteVersion: 2n * seq + 1n,
    });
  }
  return out;
}

/** Unlogged batches of `perBatch` statements, `concurrency` in flight. */
async function executeBounded(client: ReturnType<typeof createScyllaClient>, statements: readonly CqlStatement[], perBatch: number, concurrency: number): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < statements.length) {
      const start = next;
      next += perBatch;
      await client.batch(statements.slice(start, start + perBatch) as CqlStatement[], { prepare: true, logged: false, isIdempotent: true });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

/** Rows in an exported file, read back independently of the writer. */
async function rowsInFile(format: ExportFormat, file: string): Promise<number> {
  if (format === 'parquet') return Number((await parquetMetadataAsync(await asyncBufferFromFile(file))).num_rows);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).length;
  return format === 'csv' ? lines - 1 : lines;
}

interface FormatResult {
  /** A format, or 'read only': the same pages read and mapped, no file. */
  readonly format: ExportFormat | 'read only';
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerS: number;
  readonly bytes: number;
  readonly cpuSeconds: number;
  readonly rssGrowthMb: number;
  /** Most the heap held after a page, after a full collection, over the heap before. */
  readonly liveHeapMb: number;
}

/** The pages exportTrades reads, read and dropped: the reading's share of an export. */
async function scanOnly(reader: ExportReader, afterPage?: () => void): Promise<number> {
  let rows = 0;
  for await (const page of reader.trades(flags.symbol, { fetchSize: pageRows })) {
    rows += page.items.length;
    afterPage?.();
  }
  return rows;
}

async function exportOnce(reader: ExportReader, format: ExportFormat | 'read only'): Promise<FormatResult> {
  const out = path.join(outDir, `trades.${format}`);
  rmSync(out, { force: true });
  collectGarbage();
  const rssBefore = process.memoryUsage.rss();
  const heapBefore = process.memoryUsage().heapUsed;
  let rssPeak = rssBefore;
  let liveMax = 0;
  let gcMs = 0;
  let gcCpuUs = 0;
  const sample = (): void => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  };
  // After each page (written synchronously, between the timer's ticks): the RSS, then what the
  // heap still holds after a full collection — the export's working set, garbage left out. The
  // collection's time and CPU are taken out of the figures.
  const afterPage = (): void => {
    sample();
    const gcStarted = performance.now();
    const gcCpu = process.cpuUsage();
    collectGarbage();
    liveMax = Math.max(liveMax, process.memoryUsage().heapUsed - heapBefore);
    const used = process.cpuUsage(gcCpu);
    gcCpuUs += used.user + used.system;
    gcMs += performance.now() - gcStarted;
  };
  const sampler = setInterval(sample, 20);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result =
    format === 'read only'
      ? { rows: await scanOnly(reader, afterPage), complete: true }
      : await exportTrades(reader, { symbol: flags.symbol }, { format, out, restart: true, pageRows, onProgress: afterPage });
  const seconds = (performance.now() - started - gcMs) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  sample();
  if (!result.complete || result.rows !== tradeCount) throw new Error(`${format}: exported ${result.rows} rows (complete: ${result.complete}), expected ${tradeCount}`);
  if (format !== 'read only') {
    const inFile = await rowsInFile(format, out);
    if (inFile !== tradeCount) throw new Error(`${format}: ${out} holds ${inFile} rows, expected ${tradeCount}`);
  }
  return {
    format,
    rows: result.rows,
    seconds,
    rowsPerS: Math.round(result.rows / seconds),
    bytes: format === 'read only' ? 0 : statSync(out).size,
    cpuSeconds: (cpu.user + cpu.system - gcCpuUs) / 1e6,
    rssGrowthMb: (rssPeak - rssBefore) / MB,
    liveHeapMb: liveMax / MB,
  };
}

const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
const client = createScyllaClient(scyllaOptionsFromConfig(config));
let failed = false;
try {
  await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace, replicationFactor: 1, symbols: config.symbols.map((s) => s.name) });
  await client.connect();
  mkdirSync(outDir, { recursive: true });
  const writer = new SettlementWriter({ client, keyspace, symbols: config.symbols.map((s) => s.name), consistency: 'one', feeAccountUserId: config.fee_account_user_id });
  const rng = new Rng(1);
  const fillStarted = performance.now();
  const CHUNK = 2_000;
  let statements = 0;
  for (let from = 0; from < tradeCount; from += CHUNK) {
    const trades = tradesOf(from, Math.min(CHUNK, tradeCount - from), rng);
    const last = trades.at(-1)!.seq;
    const built = writer.buildStatements({
      shard: flags.symbol,
      writeTimestampUs: BigInt(Date.now()) * 1000n,
      trades,
      fundingEvents: [],
      balanceRows: [],
      deadLetters: [],
      watermark: { lastSeq: last, batchCount: BigInt(from / CHUNK + 1), jobId: `bench-export-${last}`, updatedAt: new Date() },
    });
    await executeBounded(client, built, 40, 8);
    statements += built.length;
  }
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  say(`${keyspace}: ${tradeCount} settled ${flags.symbol} trades written in ${fillSeconds.toFixed(1)} s (${statements} statements, ${Math.round(statements / fillSeconds)}/s; untimed)`);

  const reader = new ExportReader(client, keyspace, config.symbols.map((s) => s.name));
  // Untimed: the first read of what was just written pays for it (memtables, caches), not the first format.
  await scanOnly(reader);
  const results: FormatResult[] = [];
  for (const format of ['read only' as const, ...formats]) {
    const r = await exportOnce(reader, format);
    say(`${format}: ${r.rows} rows in ${r.seconds.toFixed(2)} s = ${r.rowsPerS} rows/s, ${(r.bytes / MB).toFixed(1)} MB, peak RSS +${r.rssGrowthMb.toFixed(1)} MB`);
    results.push(r);
  }
  const [load1] = loadavg();
  say(`\n${cpus().length} cores, load average ${load1!.toFixed(2)} at the end; ${tradeCount} trades, page ${pageRows} rows; the bench process's RSS ${(process.memoryUsage.rss() / MB).toFixed(0)} MB`);
  say(
    formatTable(
      ['format', 'rows', 'seconds', 'rows/s', 'MB', 'bytes/row', 'cpu s', 'peak RSS growth MB', 'live heap max MB'],
      results.map((r) => [r.format, r.rows, r.seconds, r.rowsPerS, r.bytes === 0 ? '' : r.bytes / MB, r.bytes === 0 ? '' : Math.round(r.bytes / r.rows), r.cpuSeconds, r.rssGrowthMb, r.liveHeapMb]),
    ),
  );
  say(
    "(settle export trades in process: exportTrades with the ExportReader it builds, after one untimed read of the table; 'read only': the same pages read and dropped, no file; " +
      'cpu s: this process; RSS growth: peak over the RSS after a full GC before each; live heap: most the heap held after a page, after a full GC, over the heap before; ' +
      'the GC after each page is left out of seconds and cpu s)',
  );
} catch (error) {
  failed = true;
  process.stderr.write(`[bench:export] error: ${(error as Error).stack ?? error}\n`);
} finally {
  if (!flags.keep) {
    await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    rmSync(outDir, { recursive: true, force: true });
  }
  await client.shutdown();
  await admin.shutdown();
}
process.exit(failed ? 1 : 0);
