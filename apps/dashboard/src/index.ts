/**
 * What the benchmarks call in process, exactly as the API and the CLI do: a user's history page
 * (ops/history.ts) and `settle export trades` (ops/exports.ts). The dashboard's own code does not
 * import this file.
 */
export { HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX, historyReaderOf, userTradesPage, type UserTradeView } from './ops/history.js';
export { EXPORT_PAGE_ROWS_DEFAULT, exportTrades, partialPath, statePath, type ExportProgress, type ExportResult, type ExportRunOptions } from './ops/exports.js';
export { EXPORT_FORMATS, type ExportFormat } from './ops/export-sinks.js';
