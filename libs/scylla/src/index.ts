export { createScyllaClient, scyllaOptionsFromConfig, u64FromCql, u64ToCql, CONSISTENCY } from './client.js';
export type { ScyllaClientOptions } from './client.js';
export { migrate, loadMigrations, splitStatements } from './migrations.js';
export type { Migration, MigrationOptions } from './migrations.js';
export { DeadLetterRepository, UNROUTED_SHARD } from './dead-letters.js';
export type { DeadLetter, StoredDeadLetter } from './dead-letters.js';
export { SequenceGapRepository } from './sequence-gaps.js';
export type { SequenceGap } from './sequence-gaps.js';
