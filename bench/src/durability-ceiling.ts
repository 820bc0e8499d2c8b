/**
 * The cost of database-level durability: the raw LOGGED BATCH ceiling (raw-ceiling.ts) on a
 * private second Cassandra, once with the periodic commit log users run (Cassandra's default,
 * synced every 10 s: a kill -9 loses the last acknowledged writes) and once with the commit log
 * synced before each acknowledgement (`commitlog_sync: batch`, window 2 ms, as the chaos run's
 * hardened mode uses: commitlog.ts cassandraYamlOverrides('batch')).
 *
 * The node has its own port and data folder, is started only for this phase and stopped after.
 * Both modes write the same messages on the same node: each on a fresh keyspace, the untimed
 * warm-up (the funding-heavy start of the stream) written with the periodic commit log (with the
 * synced one it would take minutes), then the node restarted in the measured mode (a restart for
 * both, so they start alike), then the timed part.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { parseConfig, type SettlementConfig } from '@settlement/config';
import type { SettlementMessage } from '@settlement/domain';
import { SettlementWriter, createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { ROOT, readPid, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions } from '@settlement/tools';
import { cassandraYamlOverrides, type CommitlogMode } from './commitlog.js';
import { CpuMeter, waitUntilQuiet } from './cpu.js';
import { planRawBatches, rawChunking, runRawCeiling, runRawWarmUp, type RawCeilingResult } from './raw-ceiling.js';

/** CQL port of the private node (its storage ports are 2 042 lower: 14 561-14 562). */
export const DURABILITY_NODE_PORT = 16_603;

export interface DurabilityCeiling {
  readonly commitlog: CommitlogMode;
  /** The cassandra.yaml settings on top of the local stack's ({} for periodic: the stack's own). */
  readonly yamlOverrides: Record<string, unknown>;
  readonly raw: RawCeilingResult;
  readonly cpuCores: Record<string, number>;
}

export interface DurabilityCeilingResult {
  readonly node: { readonly port: number; readonly heapMb: number; readonly dir: string };
  readonly periodic: DurabilityCeiling;
  readonly batch: DurabilityCeiling;
  /** batch / periodic messages/s on the same node and messages. */
  readonly batchToPeriodic: number;
}

export async function measureDurabilityCeilings(options: {
  /** The bench's raw-path config; its hosts are replaced by the private node's. */
  readonly config: Readonly<SettlementConfig>;
  /** A fresh copy of the stream for each mode (the planned statements hold it). */
  readonly messages: () => SettlementMessage[];
  readonly warmUpCount: number;
  readonly batchMessages: number;
  readonly unsettledMax: number;
  readonly durationMs: number;
  readonly heapMb: number;
  readonly dataDir: string;
  readonly say: (message: string) => void;
}): Promise<DurabilityCeilingResult> {
  const { say } = options;
  const dir = path.join(options.dataDir, 'durability-cassandra');
  rmSync(dir, { recursive: true, force: true });
  const node = (mode: CommitlogMode): LocalCassandraOptions => ({ dir, port: DURABILITY_NODE_PORT, heapMb: options.heapMb, readyTimeoutMs: 120_000, yamlOverrides: cassandraYamlOverrides(mode) });
  const quiet = (message: string) => say(`durability node: ${message}`);
  const plain = JSON.parse(JSON.stringify(options.config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  const config = parseConfig({ ...plain, scylladb: { ...plain['scylladb'], hosts: [`127.0.0.1:${DURABILITY_NODE_PORT}`], keyspace: 'bench_durability' } });
  const results = new Map<CommitlogMode, DurabilityCeiling>();
  try {
    for (const mode of ['periodic', 'batch'] as const) {
      // The warm-up with the periodic commit log, on a fresh keyspace.
      await startLocalCassandra(node('periodic'), quiet);
      const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
      await admin.execute('DROP KEYSPACE IF EXISTS bench_durability');
      await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: 'bench_durability', replicationFactor: 1, symbols: config.symbols.map((s) => s.name) });
      await admin.shutdown();
      const writerOn = (client: ReturnType<typeof createScyllaClient>) =>
        new SettlementWriter({ client, keyspace: 'bench_durability', symbols: config.symbols.map((s) => s.name), consistency: config.scylladb.consistency, feeAccountUserId: config.fee_account_user_id });
      let client = createScyllaClient(scyllaOptionsFromConfig(config));
      await client.connect();
      const messages = options.messages();
      const plans = planRawBatches(writerOn(client), messages, options.batchMessages, rawChunking(config), options.warmUpCount);
      messages.length = 0;
      say(`durability ceiling (${mode}): warm-up of ${options.warmUpCount} messages with the periodic commit log`);
      await runRawWarmUp(writerOn(client), plans);
      await client.shutdown();
      // Restarted in the measured mode (SIGTERM: a clean stop).
      await stopLocalCassandra(node(mode), quiet);
      await startLocalCassandra(node(mode), quiet);
      client = createScyllaClient(scyllaOptionsFromConfig(config));
      await client.connect();
      const pid = readPid(path.join(dir, 'cassandra.pid'));
      const waited = await waitUntilQuiet(pid, 0.15, 3, 60_000);
      say(`durability ceiling (${mode}): waited ${Math.round(waited / 1000)} s for the node to be quiet; writing for up to ${options.durationMs / 1000} s`);
      const cpu = new CpuMeter(() => ({ cassandra: pid, bench: process.pid }));
      const raw = await runRawCeiling({ client, writer: writerOn(client), plans, durationMs: options.durationMs, unsettledMax: options.unsettledMax, warmUp: false, onTimedStart: () => cpu.start() });
      const cpuCores = cpu.stop();
      await client.shutdown();
      results.set(mode, { commitlog: mode, yamlOverrides: cassandraYamlOverrides(mode) ?? {}, raw, cpuCores });
      say(`durability ceiling (${mode} commit log): ${Math.round(raw.messagesPerS)} messages/s (${Math.round(raw.tradesPerS)} trades/s)`);
      await stopLocalCassandra(node(mode), quiet);
    }
  } finally {
    await stopLocalCassandra(node('periodic'), quiet);
    rmSync(dir, { recursive: true, force: true });
  }
  const periodic = results.get('periodic')!;
  const batch = results.get('batch')!;
  return {
    node: { port: DURABILITY_NODE_PORT, heapMb: options.heapMb, dir: path.relative(ROOT, dir) },
    periodic,
    batch,
    batchToPeriodic: Math.round((batch.raw.messagesPerS / periodic.raw.messagesPerS) * 1000) / 1000,
  };
}
