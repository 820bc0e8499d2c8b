/**
 * The local stack: `up` (Redis + Cassandra + schema), `down`, `status`, `schema`.
 * Usage: tsx tools/stack/main.ts <up|down|status|schema> [--nodes N] (USAGE below).
 * With SCYLLA_HOSTS pointing elsewhere than 127.0.0.1, Cassandra is not started here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { localCassandraStatus, readPid, startLocalCassandra, stopLocalCassandra, type LocalCassandraOptions } from './cassandra.js';
import { ensureRedis } from './redis.js';
import { LocalRing, RING_NODES_MAX, localRingRuns, openLocalRing, startLocalRing, stopLocalRing } from './ring.js';

const USAGE = `
npm run stack:<up|down|status> [-- FLAGS], npm run schema: the local Redis and Cassandra

  up            start Redis and Cassandra (unless already running) and apply the schema
  down          stop Cassandra: the single node and/or every node of a running ring
  status        say what runs
  schema        apply the schema (RF = the ring's size when a ring runs)

  --nodes 1     up: 1 = one node on 127.0.0.1 (data/cassandra); 2-${RING_NODES_MAX} = a ring on
                127.0.0.1-127.0.0.N (data/cassandra-ring/nodeN), keyspace RF = N
  -h, --help    this text

  CASSANDRA_HEAP_MB   heap per node in MiB (default 1024 for one node, 512 per ring node)
`;

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
      historyBucketSeqs: config.scylladb.history_bucket_seqs,
    });
    log(`schema of keyspace ${config.scylladb.keyspace}: ${result.applied.length} migrations applied, ${result.skipped.length} already there`);
  } finally {
    await client.shutdown();
  }
}

/** The config pointed at every node of the ring, with one replica per node. */
function ringConfig(config: Readonly<SettlementConfig>, ring: LocalRing): Readonly<SettlementConfig> {
  const plain = JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  return parseConfig({ ...plain, scylladb: { ...plain['scylladb'], hosts: ring.hosts, replication_factor: ring.replicationFactor } });
}

function parseCommandLine(argv: readonly string[]): { command: string | undefined; nodes: number } {
  const text = `${USAGE.trim()}\n`;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { nodes: { type: 'string', default: '1' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${text}`);
    process.exit(2);
  }
  if (parsed.values.help === true) {
    process.stdout.write(text);
    process.exit(0);
  }
  const nodes = Number(parsed.values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > RING_NODES_MAX) {
    process.stderr.write(`--nodes must be an integer from 1 to ${RING_NODES_MAX}, got ${parsed.values.nodes}\n\n${text}`);
    process.exit(2);
  }
  return { command: parsed.positionals[0], nodes };
}

async function upRing(config: Readonly<SettlementConfig>, cassandra: LocalCassandraOptions | undefined, ringDir: string, nodes: number): Promise<void> {
  if (!cassandra) throw new Error(`--nodes ${nodes} starts a local ring, but scylladb.hosts points elsewhere: ${config.scylladb.hosts.join(',')}`);
  const single = readPid(path.join(cassandra.dir, 'cassandra.pid'));
  if (single !== undefined) {
    throw new Error(
      `the single-node Cassandra runs (pid ${single}) on 127.0.0.1:${cassandra.port}, the ring's first address: ` +
        `run \`npm run stack:down\` first, then \`npm run stack:up -- --nodes ${nodes}\``,
    );
  }
  const ring = await startLocalRing(
    {
      nodes,
      baseDir: ringDir,
      port: cassandra.port,
      heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 512),
      yamlOverrides: cassandra.yamlOverrides,
      jvmOptions: cassandra.jvmOptions,
    },
    log,
  );
  await applySchema(ringConfig(config, ring));
  log(`contact points for scylladb.hosts / SCYLLA_HOSTS: ${ring.hosts.join(',')}`);
}

async function main(argv: readonly string[]): Promise<void> {
  const { command, nodes } = parseCommandLine(argv);
  const config = loadConfig({ cwd: ROOT });
  const cassandra = localCassandra(config.scylladb.hosts, config.data_dir);
  // The ring is found from its state file, so status, down and schema need no --nodes.
  const ringDir = path.join(config.data_dir, 'cassandra-ring');
  const ring = cassandra ? openLocalRing(ringDir) : undefined;
  const ringRuns = cassandra !== undefined && localRingRuns(ringDir);
  switch (command) {
    case 'up':
      await ensureRedis(config.redis.url, config.data_dir, log);
      if (nodes > 1) {
        await upRing(config, cassandra, ringDir, nodes);
        return;
      }
      if (ringRuns) {
        throw new Error(
          `a local ring of ${ring!.state.nodes.length} nodes runs (${ring!.hosts.join(', ')}): run \`npm run stack:down\` first, ` +
            `then \`npm run stack:up\` for the single node (or \`npm run stack:up -- --nodes ${ring!.state.nodes.length}\` to keep the ring)`,
        );
      }
      if (cassandra) await startLocalCassandra(cassandra, log);
      else log(`using Cassandra/ScyllaDB at ${config.scylladb.hosts.join(',')}`);
      await applySchema(config);
      return;
    case 'schema':
      await applySchema(ringRuns ? ringConfig(config, ring!) : config);
      return;
    case 'down':
      if (cassandra) {
        if (ring) await stopLocalRing(ringDir, log);
        await stopLocalCassandra(cassandra, log);
      }
      return;
    case 'status': {
      if (!cassandra) {
        log(`Cassandra is external: ${config.scylladb.hosts.join(',')}`);
        return;
      }
      if (ring) {
        for (const node of await ring.status()) {
          log(`ring node ${node.node}: pid ${node.pid ?? 'none'}, CQL ${node.address}:${ring.state.port} ${node.answering ? 'answers' : 'closed'}`);
        }
      }
      const status = await localCassandraStatus(cassandra);
      // With a ring up, 127.0.0.1's CQL port is the ring's first node: only the pid says whether the single node runs.
      if (ring && status.pid === undefined) log('single-node Cassandra: not running');
      else log(`Cassandra: pid ${status.pid ?? 'none'}, CQL port ${cassandra.port} ${status.answering ? 'answers' : 'closed'}`);
      return;
    }
    default:
      throw new Error(`usage: stack <up|down|status|schema> [--nodes N], got ${command ?? 'nothing'}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  log(`error: ${(error as Error).message}`);
  process.exit(1);
});
