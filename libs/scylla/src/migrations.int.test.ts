import { afterAll, describe, expect, it } from 'vitest';
import { createScyllaClient, scyllaOptionsFromConfig } from './client.js';
import { migrate } from './migrations.js';
import { ROOT, testConfig } from '@settlement/testing';
import path from 'node:path';

const config = testConfig();
const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
const options = {
  schemaDir: path.join(ROOT, 'schema'),
  keyspace: config.scylladb.keyspace,
  replicationFactor: 1,
  symbols: config.symbols.map((s) => s.name),
};

afterAll(async () => {
  await admin.execute(`DROP KEYSPACE IF EXISTS ${config.scylladb.keyspace}`);
  await admin.shutdown();
});

describe('migrate', () => {
  it('creates every table once and is a no-op the second time', async () => {
    const first = await migrate(admin, options);
    expect(first.applied).toEqual(['001_core', '002_settled_trades:btc_usdt', '002_settled_trades:eth_usdt', '002_settled_trades:btc_eth', '003_watermark_max_trade_id', '004_shard_fences', '005_sequence_gap_fills', '006_dead_letter_created_at', '007_history_buckets']);
    expect(first.skipped).toEqual([]);

    const second = await migrate(admin, options);
    expect(second.applied).toEqual([]);
    expect(second.skipped).toEqual(first.applied);

    const tables = await admin.execute(
      'SELECT columnfamily_name FROM system.schema_columnfamilies WHERE keyspace_name = ?',
      [config.scylladb.keyspace],
    ).catch(() => admin.execute('SELECT table_name AS columnfamily_name FROM system_schema.tables WHERE keyspace_name = ?', [config.scylladb.keyspace]));
    const names = tables.rows.map((r) => r['columnfamily_name'] as string).sort();
    expect(names).toEqual(
      [
        'balance_corrections', 'dead_letters', 'ledger_events', 'ledger_events_by_user', 'reconciliation_errors',
        'reconciliation_jobs', 'schema_migrations', 'sequence_gap_fills', 'sequence_gaps', 'settled_trades_btc_eth', 'settled_trades_btc_usdt',
        'settled_trades_eth_usdt', 'shard_fences', 'shard_watermarks', 'trades_by_user', 'user_balances',
        'user_trades', 'user_ledger', 'user_history_buckets', 'history_layout', 'history_migration',
      ].sort(),
    );
    // A new keyspace: the bucket width of the config, nothing to backfill.
    const layout = await admin.execute(`SELECT bucket_seqs FROM ${config.scylladb.keyspace}.history_layout WHERE name = 'history'`);
    expect(layout.first()?.['bucket_seqs']).toBe(config.scylladb.history_bucket_seqs);
    const state = await admin.execute(`SELECT done FROM ${config.scylladb.keyspace}.history_migration WHERE name = 'history_buckets'`);
    expect(state.first()?.['done']).toBe(true);
    // A later width is ignored: rows would be orphaned.
    const logged: string[] = [];
    await migrate(admin, { ...options, historyBucketSeqs: 16n, log: (m) => void logged.push(m) });
    expect((await admin.execute(`SELECT bucket_seqs FROM ${config.scylladb.keyspace}.history_layout WHERE name = 'history'`)).first()?.['bucket_seqs']).toBe(config.scylladb.history_bucket_seqs);
    expect(logged.some((m) => m.includes('history_bucket_seqs differs'))).toBe(true);
  });

  it('refuses a keyspace name that is not an identifier', async () => {
    await expect(migrate(admin, { ...options, keyspace: 'x; DROP KEYSPACE system' })).rejects.toThrow(/not a plain identifier/);
  });
});
