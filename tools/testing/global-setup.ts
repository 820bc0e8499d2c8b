/**
 * Decides once per test run where Cassandra/ScyllaDB and Redis are:
 * SCYLLA_HOSTS / REDIS_URL when set; else SETTLEMENT_TEST_NODES=2|3: a local ring of that many
 * Cassandra nodes on 127.0.0.1-127.0.0.N (the one `npm run stack:up -- --nodes 3` starts, in
 * data/cassandra-ring) with test keyspaces of RF = N; else testcontainers (ScyllaDB + Redis) when
 * a Docker engine answers; else the project's local stack (real Cassandra on Java 17, local Redis).
 *
 * SETTLEMENT_TEST_RING_PORT (default 9042) puts the test ring on other ports, in
 * data/test/ring-PORT, so it can run next to the single-node stack on 127.0.0.1:9042.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '@settlement/config';
import { readPid, startLocalCassandra } from '../stack/cassandra.js';
import { ensureRedis } from '../stack/redis.js';
import { RING_NODES_MAX, localRingRuns, startLocalRing } from '../stack/ring.js';
import type { StackEndpoints } from './stack-endpoints.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (message: string) => process.stderr.write(`[test-stack] ${message}\n`);

function dockerAnswers(): boolean {
  const probe = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 5_000 });
  return probe.status === 0 && probe.stdout.trim().length > 0;
}

let stopContainers: (() => Promise<void>) | undefined;

/** SETTLEMENT_TEST_NODES: 1 (or unset) = one node; 2-3 = a local ring. A typo fails the run instead of falling back to one node. */
function testNodes(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1;
  const nodes = Number(raw);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > RING_NODES_MAX) {
    throw new Error(`SETTLEMENT_TEST_NODES must be an integer from 1 to ${RING_NODES_MAX}, got ${JSON.stringify(raw)}`);
  }
  return nodes;
}

async function ringEndpoints(config: ReturnType<typeof loadConfig>, nodes: number): Promise<StackEndpoints> {
  const redisUrl = process.env.REDIS_URL ?? config.redis.url;
  await ensureRedis(redisUrl, config.data_dir, log);
  const port = Number(process.env.SETTLEMENT_TEST_RING_PORT ?? 9042);
  if (!Number.isInteger(port) || port < 1024 || port > 65535 - 1000) throw new Error(`SETTLEMENT_TEST_RING_PORT must be a port number, got ${process.env.SETTLEMENT_TEST_RING_PORT}`);
  const single = readPid(path.join(config.data_dir, 'cassandra', 'cassandra.pid'));
  if (port === 9042 && single !== undefined) {
    throw new Error(
      `SETTLEMENT_TEST_NODES=${nodes} needs 127.0.0.1:9042 for the ring, but the single-node Cassandra runs there (pid ${single}): ` +
        'run `npm run stack:down` first (or set SETTLEMENT_TEST_RING_PORT to put the test ring on other ports)',
    );
  }
  const ringDir = port === 9042 ? path.join(config.data_dir, 'cassandra-ring') : path.join(config.data_dir, 'test', `ring-${port}`);
  const ring = await startLocalRing({ nodes, baseDir: ringDir, port, heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 512) }, log);
  return { scyllaHosts: ring.hosts, redisUrl, source: 'ring', replicationFactor: ring.replicationFactor, ringDir };
}

export async function setup(project: TestProject): Promise<void> {
  const config = loadConfig({ cwd: ROOT, env: {} });
  let endpoints: StackEndpoints;
  const nodes = testNodes(process.env.SETTLEMENT_TEST_NODES);
  if (process.env.SCYLLA_HOSTS) {
    const redisUrl = process.env.REDIS_URL ?? config.redis.url;
    endpoints = { scyllaHosts: process.env.SCYLLA_HOSTS.split(','), redisUrl, source: 'env' };
  } else if (nodes > 1) {
    endpoints = await ringEndpoints(config, nodes);
  } else if (process.env.SETTLEMENT_TESTCONTAINERS !== 'off' && dockerAnswers()) {
    log('Docker answers: starting ScyllaDB and Redis with testcontainers');
    const { GenericContainer, Wait } = await import('testcontainers');
    const scylla = await new GenericContainer('scylladb/scylla:6.2')
      .withCommand(['--smp', '1', '--memory', '1G', '--overprovisioned', '1', '--developer-mode', '1'])
      .withExposedPorts(9042)
      .withWaitStrategy(Wait.forLogMessage(/Starting listening for CQL clients|serving/i))
      .withStartupTimeout(180_000)
      .start();
    const redis = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    endpoints = {
      scyllaHosts: [`${scylla.getHost()}:${scylla.getMappedPort(9042)}`],
      redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
      source: 'testcontainers',
    };
    stopContainers = async () => {
      await Promise.allSettled([scylla.stop(), redis.stop()]);
    };
  } else {
    if (localRingRuns(path.join(config.data_dir, 'cassandra-ring'))) {
      log('a local ring runs on 127.0.0.1:9042: test keyspaces get RF=1 on it (SETTLEMENT_TEST_NODES=3 for RF=3)');
    }
    const redisUrl = process.env.REDIS_URL ?? config.redis.url;
    await ensureRedis(redisUrl, config.data_dir, log);
    const [host, port] = config.scylladb.hosts[0]!.split(':');
    await startLocalCassandra(
      { dir: path.join(config.data_dir, 'cassandra'), port: Number(port ?? 9042), heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 1024), readyTimeoutMs: 120_000 },
      log,
    );
    endpoints = { scyllaHosts: [`${host}:${port ?? 9042}`], redisUrl, source: 'local' };
  }
  log(`using ${endpoints.source}: Cassandra ${endpoints.scyllaHosts.join(',')}${endpoints.replicationFactor ? ` (test keyspaces RF=${endpoints.replicationFactor})` : ''}, Redis ${endpoints.redisUrl}`);
  project.provide('stack', endpoints);
}

export async function teardown(): Promise<void> {
  await stopContainers?.();
}
