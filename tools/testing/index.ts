/**
 * Test harness: each test file gets its own keyspace and BullMQ prefix, so files can run in
 * parallel against one Cassandra and one Redis without seeing each other.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import { inject } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseConfig, type SettlementConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import type { StackEndpoints } from './stack-endpoints.js';
import './stack-endpoints.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function stackEndpoints(): StackEndpoints {
  return inject('stack');
}

export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/** The repository's config with a fresh keyspace, prefix and data dir, plus any overrides. */
export function testConfig(overrides: Record<string, unknown> = {}, names?: { keyspace?: string; prefix?: string; dataDir?: string }): Readonly<SettlementConfig> {
  const stack = stackEndpoints();
  const base = parseYaml(readFileSync(path.join(ROOT, 'config', 'settlement.yaml'), 'utf8')) as Record<string, unknown>;
  const merged = deepMerge(base, overrides);
  const keyspace = names?.keyspace ?? uniqueName('t_');
  deepSet(merged, ['scylladb', 'hosts'], stack.scyllaHosts);
  deepSet(merged, ['scylladb', 'keyspace'], keyspace);
  if (stack.replicationFactor !== undefined) {
    // On a ring every test keyspace keeps a replica per node, and a single lost replica must not
    // fail a request: only the quorum consistencies test that.
    deepSet(merged, ['scylladb', 'replication_factor'], stack.replicationFactor);
    const consistency = (merged['scylladb'] as Record<string, unknown>)['consistency'] ?? 'local_quorum';
    if (consistency !== 'quorum' && consistency !== 'local_quorum') {
      throw new Error(`scylladb.consistency must be quorum or local_quorum on a ${stack.replicationFactor}-replica test ring, got ${String(consistency)}`);
    }
  }
  deepSet(merged, ['redis', 'url'], stack.redisUrl);
  deepSet(merged, ['redis', 'prefix'], names?.prefix ?? `{${uniqueName('t')}}`);
  deepSet(merged, ['data_dir'], names?.dataDir ?? path.join(ROOT, 'data', 'test', keyspace));
  if (!('log_level' in overrides)) deepSet(merged, ['log_level'], process.env.TEST_LOG_LEVEL ?? 'warn');
  // Tests corrupt rows on purpose and no batchlog replay is pending: confirm a mismatch at once
  // unless a test asks for the production delay (reconciliation.confirm_delay_ms).
  const reconciliation = (overrides['reconciliation'] ?? {}) as Record<string, unknown>;
  if (!('confirm_delay_ms' in reconciliation)) deepSet(merged, ['reconciliation', 'confirm_delay_ms'], 0);
  return parseConfig(merged);
}

export interface TestKeyspace {
  readonly config: Readonly<SettlementConfig>;
  /** A client bound to the test keyspace. */
  readonly client: cassandra.Client;
  drop(): Promise<void>;
}

/** Creates the keyspace of `config` (or a fresh test config) with every migration applied. */
export async function createTestKeyspace(config: Readonly<SettlementConfig> = testConfig()): Promise<TestKeyspace> {
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  await migrate(admin, {
    schemaDir: path.join(ROOT, 'schema'),
    keyspace: config.scylladb.keyspace,
    replicationFactor: config.scylladb.replication_factor,
    symbols: config.symbols.map((s) => s.name),
    historyBucketSeqs: config.scylladb.history_bucket_seqs,
  });
  const client = createScyllaClient(scyllaOptionsFromConfig(config));
  await client.connect();
  return {
    config,
    client,
    async drop() {
      await client.shutdown();
      if (process.env.KEEP_TEST_KEYSPACES !== '1') {
        await admin.execute(`DROP KEYSPACE IF EXISTS ${config.scylladb.keyspace}`).catch(() => undefined);
      }
      await admin.shutdown();
    },
  };
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const prior = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof prior === 'object' && prior !== null && !Array.isArray(prior)
        ? deepMerge(prior as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function deepSet(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Writes a config as YAML for an app started as a child process (SETTLEMENT_CONFIG=file). */
export function writeConfigFile(config: Readonly<SettlementConfig>, file: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, stringifyYaml(JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))));
  return file;
}

/** Environment to start an app from source as a child process: `node --import tsx apps/x/src/main.ts`. */
export function appEnv(configFile: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, SETTLEMENT_CONFIG: configFile, ...extra };
}
export { freePort, TcpProxy, withCassandraHost } from './net.js';
export { waitFor } from './wait-for.js';
export { TestRedisServer } from './redis-server.js';

/** Empties and closes a test file's queues (its own prefix), then quits its Redis connection. */
export async function closeTestQueues(queues: Iterable<Queue>, redis?: { quit(): Promise<unknown> }): Promise<void> {
  for (const queue of queues) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  await redis?.quit();
}
