export { createScyllaClient, scyllaOptionsFromConfig, u64FromCql, u64ToCql, CONSISTENCY } from './client.js';
export { connectWhenReachable, whenReachable, type ConnectWhenReachableOptions } from './connect-when-reachable.js';
export type { ScyllaClientOptions } from './client.js';
export { migrate, loadMigrations, splitStatements } from './migrations.js';
export type { Migration, MigrationOptions } from './migrations.js';
export { DeadLetterRepository, UNROUTED_SHARD, DEAD_LETTER_SCAN_ROWS_MAX, deadLetterId, newestDeadLetterFirst } from './dead-letters.js';
export type { DeadLetter, StoredDeadLetter, DeadLetterIdentity, DeadLetterRepositoryOptions } from './dead-letters.js';
export { SequenceGapRepository } from './sequence-gaps.js';
export type { SequenceGap } from './sequence-gaps.js';
export { ReconciliationReader, ReconciliationStore, TOKEN_MIN, TOKEN_MAX, NO_USER_ID, NO_ASSET_ID, NO_SHARD } from './reconciliation.js';
export type {
  ReconciliationReaderOptions,
  UserToken,
  FundingTotalsRow,
  ReconciliationJobRecord,
  ReconciliationJobStatus,
  FindingRecord,
  StoredFinding,
} from './reconciliation.js';
export { SettlementWriter, executeSettlementBatch } from './settlement-writer.js';
export type { CqlStatement, SettlementBatchRows, SettlementBatchOptions, SettlementDeadLetter, CorrectionRecord, SettlementWriterOptions } from './settlement-writer.js';
export { BalanceRepository } from './balances.js';
export type { UserAssetBalance, StoredBalanceRow } from './balances.js';
export { TradeRepository } from './trades.js';
export type { UserLedgerEvent, Page, PageRequest } from './trades.js';
export { SETTLED_TRADE_FIELDS, SETTLED_TRADE_COLUMNS, USER_TRADE_COLUMNS } from './settled-trade-row.js';
export type { SettledTrade, UserTrade, ColumnKind } from './settled-trade-row.js';
export { WatermarkRepository } from './watermarks.js';
export type { ShardWatermark } from './watermarks.js';
export { FenceRepository } from './fences.js';
export { replicationOf, checkConsistencyFits } from './replication.js';
export type { Replication } from './replication.js';
export { UserHistoryReader } from './history.js';
export type { HistoryPosition, HistoryPageRequest, TradeHistoryRequest, HistoryPage, UserHistoryReaderOptions } from './history.js';
export { scanTable, ringPercent } from './table-scan.js';
export type { ScanPage, ScanOptions } from './table-scan.js';
export { ExportReader } from './exports.js';
export type { ExportPage } from './exports.js';
export { HistoryLayoutRepository, HistoryLayoutFlag, dualWriteOf, HISTORY_FLAG_TTL_MS, HISTORY_MODE_REFRESH_MS, DUAL_WRITE_GRACE_MS } from './history-layout.js';
export type { HistoryMigrationState, HistoryWriteMode } from './history-layout.js';
export { BucketedHistoryReader } from './bucketed-history.js';
export { HistoryBackfill } from './history-backfill.js';
export type { HistoryBackfillOptions, HistoryBackfillProgress, HistoryBackfillResult } from './history-backfill.js';
