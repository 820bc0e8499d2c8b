/**
 * The local stack: `up` (Redis + Cassandra + schema), `down`, `status`, `schema`.
 * Usage: tsx tools/stack/main.ts <up|down|status|schema>
 * With SCYLLA_HOSTS pointing elsewhere than 127.0.0.1, Cassandra is not started here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { localCassandraStatus, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions } from './cassandra.js';
import { ensureRedis } from './redis.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (message: string) => process.stderr.write(`[stack] ${message}\n`);

/** CASSANDRA_YAML_JSON: extra cassandra.yaml settings, e.g. {"concurrent_writes":8}. */
function yamlOverridesFromEnv(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`CASSANDRA_YAML_JSON: must be a JSON object of cassandra.yaml settings: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('CASSANDRA_YAML_JSON: must be a JSON object of cassandra.yaml settings');
  return parsed as Record<string, unknown>;
}

function localCassandra(hosts: readonly string[], dataDir: string): LocalCassandraOptions | undefined {
  const [host, port] = hosts[0]!.split(':');
  if (hosts.length !== 1 || !['127.0.0.1', 'localhost'].includes(host!)) return undefined;
  return {
    dir: path.join(dataDir, 'cassandra'),
    port: port === undefined ? 9042 : Number(port),
    heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 1024),
    readyTimeoutMs: 120_000,
    yamlOverrides: yamlOverridesFromEnv(process.env.CASSANDRA_YAML_JSON),
    jvmOptions: (process.env.CASSANDRA_JVM_OPTS ?? '').split(' ').filter(Boolean),
  };
}

export async function applySchema(config: ReturnType<typeof loadConfig>): Promise<void> {
  const client = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  try {
    const result = await migrate(client, {
      schemaDir: path.join(ROOT, 'schema'),
      keyspace: config.scylladb.keyspace,
      replicationFactor: config.scylladb.replication_factor,
      symbols: config.symbols.map((s) => s.name),
    });
    log(`schema of keyspace ${config.scylladb.keyspace}: ${result.applied.length} migrations applied, ${result.skipped.length} already there`);
  } finally {
    await client.shutdown();
  }
}

async function main(command: string | undefined): Promise<void> {
  const config = loadConfig({ cwd: ROOT });
  const cassandra = localCassandra(config.scylladb.hosts, config.data_dir);
  switch (command) {
    case 'up':
      await ensureRedis(config.redis.url, config.data_dir, log);
      if (cassandra) await startLocalCassandra(cassandra, log);
      else log(`using Cassandra/ScyllaDB at ${config.scylladb.hosts.join(',')}`);
      await applySchema(config);
      return;
    case 'schema':
      await applySchema(config);
      return;
    case 'down':
      if (cassandra) await stopLocalCassandra(cassandra, log);
      return;
    case 'status': {
      if (!cassandra) {
        log(`Cassandra is external: ${config.scylladb.hosts.join(',')}`);
        return;
      }
      const status = await localCassandraStatus(cassandra);
      log(`Cassandra: pid ${status.pid ?? 'none'}, CQL port ${cassandra.port} ${status.answering ? 'answers' : 'closed'}`);
      return;
    }
    default:
      throw new Error(`usage: stack <up|down|status|schema>, got ${command ?? 'nothing'}`);
  }
}

main(process.argv[2]).catch((error: unknown) => {
  log(`error: ${(error as Error).message}`);
  process.exit(1);
});
