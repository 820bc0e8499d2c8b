import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type cassandra from 'cassandra-driver';
import { HistoryLayoutRepository } from './history-layout.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,40}$/;

export interface MigrationOptions {
  /** Folder of versioned CQL files (NNN_name.cql). */
  readonly schemaDir: string;
  readonly keyspace: string;
  readonly replicationFactor: number;
  /** Symbol names; files containing {symbol} are applied once per symbol. */
  readonly symbols: readonly string[];
  /**
   * Width of a history bucket (scylladb.history_bucket_seqs), recorded once in history_layout
   * when the keyspace is created; ignored (with a log line) afterwards. Default 131 072.
   */
  readonly historyBucketSeqs?: bigint | undefined;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface Migration {
  /** e.g. "001_core" or "002_settled_trades:btc_usdt". */
  readonly version: string;
  readonly statements: readonly string[];
  readonly checksum: string;
}

function assertIdentifier(value: string, what: string): void {
  if (!IDENTIFIER.test(value)) throw new Error(`${what} ${JSON.stringify(value)} is not a plain identifier`);
}

/** Splits a CQL file into statements, dropping comments. */
export function splitStatements(cql: string): string[] {
  return cql
    .split('\n')
    .map((line) => line.replace(/--.*$/, ''))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function loadMigrations(options: Pick<MigrationOptions, 'schemaDir' | 'symbols'>): Migration[] {
  const files = readdirSync(options.schemaDir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.cql$/.test(f))
    .sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const text = readFileSync(path.join(options.schemaDir, file), 'utf8');
    const name = file.replace(/\.cql$/, '');
    const variants = text.includes('{symbol}')
      ? options.symbols.map((symbol) => {
          assertIdentifier(symbol, 'symbol');
          return { version: `${name}:${symbol}`, cql: text.replaceAll('{symbol}', symbol) };
        })
      : [{ version: name, cql: text }];
    for (const variant of variants) {
      migrations.push({
        version: variant.version,
        statements: splitStatements(variant.cql),
        checksum: createHash('sha256').update(variant.cql).digest('hex').slice(0, 16),
      });
    }
  }
  return migrations;
}

/**
 * Creates the keyspace and applies every migration not yet recorded in schema_migrations.
 * Idempotent: statements are IF NOT EXISTS and applied versions are skipped. A recorded
 * version whose file changed is an error, not a silent re-run.
 */
export async function migrate(client: cassandra.Client, options: MigrationOptions): Promise<{ applied: string[]; skipped: string[] }> {
  assertIdentifier(options.keyspace, 'keyspace');
  if (!Number.isInteger(options.replicationFactor) || options.replicationFactor < 1) {
    throw new Error(`replication factor must be a positive integer, got ${options.replicationFactor}`);
  }
  const ks = options.keyspace;
  await client.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${options.replicationFactor}}`,
  );
  await client.execute(
    `CREATE TABLE IF NOT EXISTS ${ks}.schema_migrations (version text PRIMARY KEY, checksum text, applied_at timestamp)`,
  );
  const done = new Map<string, string>();
  const rows = await client.execute(`SELECT version, checksum FROM ${ks}.schema_migrations`, [], { prepare: false });
  for (const row of rows.rows) done.set(row['version'] as string, row['checksum'] as string);

  const applied: string[] = [];
  const skipped: string[] = [];
  for (const migration of loadMigrations(options)) {
    const recorded = done.get(migration.version);
    if (recorded !== undefined) {
      if (recorded !== migration.checksum) {
        throw new Error(
          `migration ${migration.version} was applied with checksum ${recorded} but the file now has ${migration.checksum}; add a new migration instead of editing an applied one`,
        );
      }
      skipped.push(migration.version);
      continue;
    }
    for (const statement of migration.statements) {
      // Unqualified table names are created in the target keyspace.
      try {
        await client.execute(qualify(statement, ks), [], { prepare: false });
      } catch (error) {
        // ALTER … ADD has no IF NOT EXISTS: a run that died after the ALTER but before its
        // record finds the column there, which is the state it wanted.
        if (!(/^ALTER\s+TABLE/i.test(statement) && /already exist|conflicts with an existing column|duplicate/i.test((error as Error).message))) throw error;
      }
    }
    await client.execute(
      `INSERT INTO ${ks}.schema_migrations (version, checksum, applied_at) VALUES (?, ?, ?)`,
      [migration.version, migration.checksum, new Date()],
      { prepare: true },
    );
    options.log?.('migration applied', { version: migration.version });
    applied.push(migration.version);
  }
  // The history layout's bucket width and backfill state (007_history_buckets): a keyspace whose
  // pre-bucket tables are empty needs no backfill and is marked done at once.
  if (done.has('007_history_buckets') || applied.includes('007_history_buckets')) {
    await new HistoryLayoutRepository(client, ks).ensure(options.historyBucketSeqs, options.log);
  }
  return { applied, skipped };
}

function qualify(statement: string, keyspace: string): string {
  return statement
    .replace(
      /^(CREATE\s+(?:TABLE|INDEX|TYPE)\s+IF\s+NOT\s+EXISTS\s+)([a-z][a-z0-9_]*)(\s*\()/i,
      (_m, head: string, table: string, tail: string) => `${head}${keyspace}.${table}${tail}`,
    )
    .replace(/^(ALTER\s+TABLE\s+)([a-z][a-z0-9_]*)(\s)/i, (_m, head: string, table: string, tail: string) => `${head}${keyspace}.${table}${tail}`);
}
