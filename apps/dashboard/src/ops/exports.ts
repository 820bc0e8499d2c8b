/**
 * `settle export`: settled trades of a symbol, or every balance row, streamed to a file page by
 * page (memory holds one page), resumable. Next to `FILE` the export keeps `FILE.partial` (the
 * rows so far) and `FILE.export-state.json`: after each page the partial file is fsynced and the
 * state records its length, the driver's paging state of the scan and, for Parquet, the row groups
 * written. A run that finds a state for the same selection goes on from there (bytes after the
 * checkpoint are cut off first); a state of another selection is refused until --restart. When the
 * scan is done the file is completed and renamed to FILE, and the state removed.
 *
 * Rows come in token order (Cassandra's, not time). A trade export's time range filters on the
 * engine's settled_at while scanning the whole table.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { MarketCatalog } from '@settlement/domain';
import { SETTLED_TRADE_FIELDS, ringPercent, type ColumnKind, type ExportPage, type ExportReader, type SettledTrade, type StoredBalanceRow } from '@settlement/scylla';
import { EXPORT_FORMATS, openSink, type ExportColumn, type ExportFormat, type ExportRecord, type SinkCheckpoint } from './export-sinks.js';
import { timeSchema } from './history.js';
import { InputError } from './input-error.js';
import { parseInput, symbolSchema } from './params.js';

/** Rows per page read from Cassandra (and per Parquet row group). */
export const EXPORT_PAGE_ROWS_DEFAULT = 5_000;

const TRADE_FIELDS = Object.entries(SETTLED_TRADE_FIELDS) as [keyof typeof SETTLED_TRADE_FIELDS, readonly [string, ColumnKind]][];

/** The symbol, then the table's columns under their own names: asset ids as int32, every id and amount a decimal string. */
export const TRADE_EXPORT_COLUMNS: readonly ExportColumn[] = [
  { name: 'symbol', type: 'string' },
  ...TRADE_FIELDS.map(([, [name, kind]]) => ({ name, type: kind === 'int' ? ('int32' as const) : ('string' as const) })),
];

export const BALANCE_EXPORT_COLUMNS: readonly ExportColumn[] = [
  { name: 'user_id', type: 'string' },
  { name: 'asset_id', type: 'int32' },
  { name: 'asset', type: 'string' },
  { name: 'shard', type: 'string' },
  { name: 'available', type: 'string' },
  { name: 'frozen', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'shard_watermark', type: 'string' },
];

export function tradeRecord(t: SettledTrade): ExportRecord {
  const record: Record<string, string | number> = { symbol: t.symbol };
  for (const [field, [column]] of TRADE_FIELDS) {
    const value = t[field];
    record[column] = typeof value === 'bigint' ? value.toString() : value;
  }
  return record;
}

const formatSchema = z.enum(EXPORT_FORMATS, { message: `must be one of ${EXPORT_FORMATS.join(', ')}` });
const outSchema = z.string().min(1, 'must be a file path');

export function tradeExportSchema(catalog: MarketCatalog) {
  return z
    .strictObject({ symbol: symbolSchema(catalog), from: timeSchema.optional(), to: timeSchema.optional(), format: formatSchema, out: outSchema })
    .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'must not be after to', path: ['from'] });
}
export const balanceExportSchema = z.strictObject({ format: formatSchema, out: outSchema });

export interface ExportProgress {
  readonly rows: number;
  readonly rowsRead: number;
  /** How far round the token ring the scan is; undefined before the first row. */
  readonly percent: number | undefined;
}

export interface ExportRunOptions {
  readonly format: ExportFormat;
  readonly out: string;
  /** Discard an unfinished export of FILE instead of resuming it. */
  readonly restart?: boolean | undefined;
  readonly pageRows?: number | undefined;
  /** Stop (resumable) after this many pages: exports in slices, and tests of the resume. */
  readonly pagesMax?: number | undefined;
  readonly onProgress?: ((progress: ExportProgress) => void) | undefined;
}

export interface ExportResult {
  readonly file: string;
  readonly rows: number;
  /** Whether the run went on from an earlier run's checkpoint. */
  readonly resumed: boolean;
  /** False when pagesMax stopped it before the end: run again to go on. */
  readonly complete: boolean;
}

interface ExportState {
  readonly version: 1;
  /** Fingerprint of what is exported (kind, selection, format, columns). */
  readonly key: string;
  readonly pageState: string | null;
  readonly scanDone: boolean;
  readonly rows: number;
  readonly rowsRead: number;
  readonly checkpoint: SinkCheckpoint;
  /** Facts fixed at the first run (the balance export's watermarks), kept for the resumed part. */
  readonly fixed: Readonly<Record<string, string>>;
}

export const statePath = (out: string): string => `${out}.export-state.json`;
export const partialPath = (out: string): string => `${out}.partial`;

function readState(out: string): ExportState | undefined {
  if (!existsSync(statePath(out))) return undefined;
  return JSON.parse(readFileSync(statePath(out), 'utf8')) as ExportState;
}

function writeState(out: string, state: ExportState): void {
  const tmp = `${statePath(out)}.tmp`;
  writeFileSync(tmp, JSON.stringify(state));
  renameSync(tmp, statePath(out));
}

/**
 * The resumable loop shared by both exports. `pages` scans from a paging state; `fixedNow`
 * computes the facts fixed at the first run.
 */
async function runExport<T>(
  options: ExportRunOptions,
  selection: readonly unknown[],
  columns: readonly ExportColumn[],
  fixedNow: () => Promise<Record<string, string>>,
  pages: (pageState: string | undefined) => AsyncGenerator<ExportPage<T>>,
  toRecords: (items: readonly T[], fixed: Readonly<Record<string, string>>) => ExportRecord[],
): Promise<ExportResult> {
  const key = createHash('sha256').update(JSON.stringify([...selection, options.format, columns.map((c) => c.name)], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).digest('hex').slice(0, 16);
  if (options.restart === true) {
    rmSync(statePath(options.out), { force: true });
    rmSync(partialPath(options.out), { force: true });
  }
  let state = readState(options.out);
  if (state !== undefined && state.key !== key) {
    throw new InputError(`Invalid arguments: out: ${options.out} has an unfinished export of another selection or format (${statePath(options.out)}); pass --restart to discard it`, 'out');
  }
  if (state !== undefined && !existsSync(partialPath(options.out))) {
    throw new InputError(`Invalid arguments: out: ${partialPath(options.out)} is missing but ${statePath(options.out)} says an export is under way; pass --restart`, 'out');
  }
  const resumed = state !== undefined;
  state ??= { version: 1, key, pageState: null, scanDone: false, rows: 0, rowsRead: 0, checkpoint: { bytes: 0 }, fixed: await fixedNow() };
  const sink = openSink(options.format, partialPath(options.out), columns, resumed ? state.checkpoint : undefined);
  let pagesDone = 0;
  try {
    if (!state.scanDone) {
      for await (const page of pages(state.pageState ?? undefined)) {
        const records = toRecords(page.items, state.fixed);
        sink.write(records);
        state = { ...state, pageState: page.pageState ?? null, scanDone: page.pageState === undefined, rows: state.rows + records.length, rowsRead: state.rowsRead + page.rowsRead, checkpoint: sink.checkpoint() };
        writeState(options.out, state);
        options.onProgress?.({ rows: state.rows, rowsRead: state.rowsRead, percent: state.scanDone ? 100 : ringPercent(page.lastToken) });
        pagesDone++;
        if (!state.scanDone && options.pagesMax !== undefined && pagesDone >= options.pagesMax) {
          sink.abandon();
          return { file: partialPath(options.out), rows: state.rows, resumed, complete: false };
        }
      }
    }
  } catch (error) {
    sink.abandon();
    throw error;
  }
  sink.finish();
  renameSync(partialPath(options.out), options.out);
  rmSync(statePath(options.out), { force: true });
  return { file: options.out, rows: state.rows, resumed, complete: true };
}

export interface TradeExportRequest {
  readonly symbol: string;
  readonly from?: bigint | undefined;
  readonly to?: bigint | undefined;
}

export function exportTrades(reader: ExportReader, request: TradeExportRequest, options: ExportRunOptions): Promise<ExportResult> {
  const fetchSize = options.pageRows ?? EXPORT_PAGE_ROWS_DEFAULT;
  const inRange = (t: bigint) => (request.from === undefined || t >= request.from) && (request.to === undefined || t <= request.to);
  return runExport(
    options,
    ['trades', request.symbol, request.from ?? null, request.to ?? null],
    TRADE_EXPORT_COLUMNS,
    async () => ({}),
    (pageState) => reader.trades(request.symbol, { fetchSize, pageState }),
    (items) => items.filter((t) => inRange(t.settledAt)).map(tradeRecord),
  );
}

/**
 * Every balance row with its version (the shard sequence it is as of) and the shard's watermark
 * when the export began. The scan is not one instant: a row settled during it shows a version
 * above that watermark; each row is exact as of its own version.
 */
export function exportBalances(reader: ExportReader, catalog: MarketCatalog, watermarks: () => Promise<ReadonlyMap<string, bigint>>, options: ExportRunOptions): Promise<ExportResult> {
  const fetchSize = options.pageRows ?? EXPORT_PAGE_ROWS_DEFAULT;
  return runExport<StoredBalanceRow>(
    options,
    ['balances'],
    BALANCE_EXPORT_COLUMNS,
    async () => Object.fromEntries([...(await watermarks()).entries()].map(([shard, seq]) => [shard, seq.toString()])),
    (pageState) => reader.balances({ fetchSize, pageState }),
    (items, fixed) =>
      items.map((b) => ({
        user_id: b.userId.toString(),
        asset_id: b.assetId,
        asset: catalog.assets.get(b.assetId)?.code ?? `#${b.assetId}`,
        shard: b.shard,
        available: b.available.toString(),
        frozen: b.locked.toString(),
        version: b.version.toString(),
        shard_watermark: fixed[b.shard] ?? '',
      })),
  );
}

export function parseTradeExport(catalog: MarketCatalog, raw: unknown): z.output<ReturnType<typeof tradeExportSchema>> {
  return parseInput(tradeExportSchema(catalog), raw, 'arguments');
}
