/**
 * Decides once per test run where Cassandra/ScyllaDB and Redis are:
 * SCYLLA_HOSTS / REDIS_URL when set; else testcontainers (ScyllaDB + Redis) when a Docker engine
 * answers; else the project's local stack (real Cassandra on Java 17, local Redis).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '@settlement/config';
import { startLocalCassandra } from '../stack/cassandra.js';
import { ensureRedis } from '../stack/redis.js';
import type { StackEndpoints } from './stack-endpoints.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = (message: string) => process.stderr.write(`[test-stack] ${message}\n`);

function dockerAnswers(): boolean {
  const probe = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 5_000 });
  return probe.status === 0 && probe.stdout.trim().length > 0;
}

let stopContainers: (() => Promise<void>) | undefined;

export async function setup(project: TestProject): Promise<void> {
  const config = loadConfig({ cwd: ROOT, env: {} });
  let endpoints: StackEndpoints;
  if (process.env.SCYLLA_HOSTS) {
    const redisUrl = process.env.REDIS_URL ?? config.redis.url;
    endpoints = { scyllaHosts: process.env.SCYLLA_HOSTS.split(','), redisUrl, source: 'env' };
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
    const redisUrl = process.env.REDIS_URL ?? config.redis.url;
    await ensureRedis(redisUrl, config.data_dir, log);
    const [host, port] = config.scylladb.hosts[0]!.split(':');
    await startLocalCassandra(
      { dir: path.join(config.data_dir, 'cassandra'), port: Number(port ?? 9042), heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 1024), readyTimeoutMs: 120_000 },
      log,
    );
    endpoints = { scyllaHosts: [`${host}:${port ?? 9042}`], redisUrl, source: 'local' };
  }
  log(`using ${endpoints.source}: Cassandra ${endpoints.scyllaHosts.join(',')}, Redis ${endpoints.redisUrl}`);
  project.provide('stack', endpoints);
}

export async function teardown(): Promise<void> {
  await stopContainers?.();
}
