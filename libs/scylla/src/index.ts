export { createScyllaClient, scyllaOptionsFromConfig, u64FromCql, u64ToCql, CONSISTENCY } from './client.js';
export type { ScyllaClientOptions } from './client.js';
export { migrate, loadMigrations, splitStatements } from './migrations.js';
export type { Migration, MigrationOptions } from './migrations.js';
