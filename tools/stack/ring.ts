/**
 * A local Cassandra ring: two or three nodes of the project's Java 17 Cassandra on loopback
 * addresses 127.0.0.1, 127.0.0.2, 127.0.0.3 (127.0.0.0/8 is all routed to `lo`), sharing the
 * ports 9042/7000/7001, for replication tests (RF=3, QUORUM) and the chaos run.
 *
 * Each node has its own folder under `baseDir` (node1, node2, …) and `baseDir/ring.json` records
 * the ring, so `stack:status`, `stack:down` and another process (the chaos run, a test) find a
 * running ring without being told its size. See ../shared/LOCAL_CASSANDRA.md, "A three-node ring
 * on one machine".
 *
 * Programmatic use:
 *
 * ```ts
 * const ring = await startLocalRing({ nodes: 3, baseDir: 'data/cassandra-ring' }, log);
 * ring.killNode(2);            // kill -9 of 127.0.0.2's java process
 * await ring.restartNode(2);   // same config and data; resolves once the ring is whole again
 * ring.pauseNode(3);           // SIGSTOP: the node hangs (no crash, no closed sockets)
 * ring.resumeNode(3);          // SIGCONT
 * await ring.stop(log);        // or stopLocalRing(baseDir, log) from another process
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import cassandra from 'cassandra-driver';
import {
  isProcessAlive,
  localCassandraStatus,
  portAnswers,
  readPid,
  startLocalCassandra,
  stopLocalCassandra,
  type LocalCassandraOptions,
  type StackLog,
} from './cassandra.js';
import { RING_ERROR_CODES, RingError } from './ring-error.js';

export { RING_ERROR_CODES, RingError, type RingErrorCode } from './ring-error.js';

/**
 * Nodes a local ring may have: one per loopback address 127.0.0.1-127.0.0.3. Three 512 MiB
 * nodes is also what a 2-core machine holds next to the service under test.
 */
export const RING_NODES_MAX = 3;

/** The state file a running ring leaves in its base folder. */
export const RING_STATE_FILE = 'ring.json';

export interface LocalRingOptions {
  /** Number of nodes, 1-3; node N listens on 127.0.0.N. Default 3. */
  nodes?: number;
  /** Folder holding one folder per node (node1, node2, …) and ring.json. Required. */
  baseDir: string;
  /** JVM heap of each node in MiB. Default 512 (three fit a 2-core 24 GiB machine). */
  heapMb?: number;
  /** CQL port of every node; storage ports follow it (port - 9042 + 7000/7001). Default 9042. */
  port?: number;
  /** `cluster_name` of every node. Default "settlement-ring" (unlike the single node's, so the two never merge). */
  clusterName?: string;
  /** `-Dcassandra.ring_delay_ms`: how long a joining node listens to gossip. Default 3000 ms (Cassandra's own is 30 000). */
  ringDelayMs?: number;
  /** How long each node may take to open its CQL port. Default 120 000 ms. */
  nodeReadyTimeoutMs?: number;
  /** How long the ring may take to become whole once every node answers. Default 60 000 ms. */
  ringReadyTimeoutMs?: number;
  /** Extra cassandra.yaml settings for every node (e.g. commitlog_sync: batch). */
  yamlOverrides?: Record<string, unknown>;
  /** Extra JVM flags for every node. */
  jvmOptions?: readonly string[];
}

/** What ring.json holds: enough to restart any node exactly as it was started. */
export interface LocalRingState {
  readonly clusterName: string;
  readonly port: number;
  readonly ringReadyTimeoutMs: number;
  readonly nodes: readonly LocalCassandraOptions[];
  readonly startedAt: string;
}

export interface RingNodeStatus {
  /** 1-based node number; the node listens on `address`. */
  readonly node: number;
  readonly address: string;
  readonly dir: string;
  readonly pid?: number;
  readonly answering: boolean;
}

const DEFAULTS = {
  nodes: 3,
  heapMb: 512,
  port: 9042,
  clusterName: 'settlement-ring',
  ringDelayMs: 3_000,
  nodeReadyTimeoutMs: 120_000,
  ringReadyTimeoutMs: 60_000,
} as const;


export function ringAddress(node: number): string {
  return `127.0.0.${node}`;
}

export function ringStateFile(baseDir: string): string {
  return path.join(baseDir, RING_STATE_FILE);
}

/** The state of the ring recorded in `baseDir`, or undefined when none was started there (or it was stopped). */
export function readRingState(baseDir: string): LocalRingState | undefined {
  const file = ringStateFile(baseDir);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as LocalRingState;
  if (!Array.isArray(state.nodes) || state.nodes.length < 1 || state.nodes.length > RING_NODES_MAX) {
    throw new RingError(RING_ERROR_CODES.badState, `${file}: expected 1-${RING_NODES_MAX} nodes, got ${JSON.stringify(state.nodes?.length)}`);
  }
  return state;
}

function resolveOptions(options: LocalRingOptions): LocalRingState {
  const nodes = options.nodes ?? DEFAULTS.nodes;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > RING_NODES_MAX) {
    throw new RingError(RING_ERROR_CODES.badOptions, `nodes must be an integer from 1 to ${RING_NODES_MAX} (one per 127.0.0.N address), got ${nodes}`);
  }
  const heapMb = options.heapMb ?? DEFAULTS.heapMb;
  if (!Number.isInteger(heapMb) || heapMb < 256) throw new RingError(RING_ERROR_CODES.badOptions, `heapMb must be an integer ≥ 256, got ${heapMb}`);
  const port = options.port ?? DEFAULTS.port;
  const clusterName = options.clusterName ?? DEFAULTS.clusterName;
  const ringDelayMs = options.ringDelayMs ?? DEFAULTS.ringDelayMs;
  const seed = ringAddress(1);
  const baseDir = path.resolve(options.baseDir);
  return {
    clusterName,
    port,
    ringReadyTimeoutMs: options.ringReadyTimeoutMs ?? DEFAULTS.ringReadyTimeoutMs,
    startedAt: new Date().toISOString(),
    nodes: Array.from({ length: nodes }, (_, i) => ({
      dir: path.join(baseDir, `node${i + 1}`),
      port,
      listenAddress: ringAddress(i + 1),
      seeds: [seed],
      heapMb,
      readyTimeoutMs: options.nodeReadyTimeoutMs ?? DEFAULTS.nodeReadyTimeoutMs,
      yamlOverrides: { cluster_name: clusterName, endpoint_snitch: 'SimpleSnitch', ...options.yamlOverrides },
      jvmOptions: [`-Dcassandra.ring_delay_ms=${ringDelayMs}`, ...(options.jvmOptions ?? [])],
    })),
  };
}

/**
 * Refuses to start a ring whose first node would take the address and ports of a CQL server
 * that is already there (typically the stack's single default node on 127.0.0.1:9042).
 */
async function assertAddressesFree(state: LocalRingState, baseDir: string): Promise<void> {
  for (const node of state.nodes) {
    const running = readPid(path.join(node.dir, 'cassandra.pid'));
    if (running !== undefined) continue; // one of this ring's own nodes: startLocalCassandra reuses it
    if (await portAnswers(state.port, node.listenAddress)) {
      throw new RingError(
        RING_ERROR_CODES.addressTaken,
        `a CQL server that is not a node of the ring in ${baseDir} already answers on ${node.listenAddress}:${state.port} ` +
          '(the single-node stack?): run `npm run stack:down` first, then start the ring',
      );
    }
  }
}

/** A client that sends every request to the one node at `address` (no failover to the others). */
function nodeClient(address: string, port: number): cassandra.Client {
  const { AllowListPolicy, RoundRobinPolicy } = cassandra.policies.loadBalancing;
  return new cassandra.Client({
    contactPoints: [address],
    localDataCenter: 'datacenter1',
    protocolOptions: { port, maxVersion: 3 },
    policies: { loadBalancing: new AllowListPolicy(new RoundRobinPolicy(), [`${address}:${port}`]) },
    socketOptions: { connectTimeout: 3_000, readTimeout: 5_000 },
    pooling: { warmup: false },
  });
}

/** Runs one query on the node at `address` alone; undefined while it does not answer. */
async function queryNode<T>(address: string, port: number, cql: string, read: (result: cassandra.types.ResultSet) => T): Promise<T | undefined> {
  const client = nodeClient(address, port);
  try {
    return read(await client.execute(cql, [], { prepare: false, isIdempotent: true }));
  } catch {
    return undefined;
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}

/** The peers `address` lists in system.peers, or undefined while it does not answer. */
function peersOf(address: string, port: number): Promise<string[] | undefined> {
  return queryNode(address, port, 'SELECT peer FROM system.peers', (result) => result.rows.map((row) => (row['peer'] as { toString(): string }).toString()));
}

/**
 * Hints `address` still holds for other nodes (system.hints, Cassandra 2.1: writes a replica
 * missed, kept by their coordinator until it is back), at most 100 counted; undefined while it
 * does not answer.
 */
function pendingHintsOf(address: string, port: number): Promise<number | undefined> {
  return queryNode(address, port, 'SELECT target_id FROM system.hints LIMIT 100', (result) => result.rowLength);
}

/** Polls until every running node answers CQL and lists every other node in system.peers. */
async function waitForWholeRing(state: LocalRingState, log: StackLog, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const addresses = state.nodes.map((n) => n.listenAddress!);
  let missing = '';
  while (Date.now() < deadline) {
    missing = '';
    for (const address of addresses) {
      const peers = await peersOf(address, state.port);
      if (peers === undefined) {
        missing += ` ${address} does not answer;`;
        continue;
      }
      const absent = addresses.filter((a) => a !== address && !peers.includes(a));
      if (absent.length > 0) missing += ` ${address} does not list ${absent.join(',')};`;
    }
    if (missing === '') return;
    await sleep(500);
  }
  throw new RingError(RING_ERROR_CODES.notWhole, `the ring was not whole after ${timeoutMs} ms:${missing}`);
}

/** A ring started by startLocalRing or found by openLocalRing. Node numbers are 1-based: node N is 127.0.0.N. */
export class LocalRing {
  constructor(
    /** Folder holding the node folders and ring.json. */
    readonly baseDir: string,
    readonly state: LocalRingState,
  ) {}

  /** Contact points for `scylladb.hosts`: every node as address:port. */
  get hosts(): string[] {
    return this.state.nodes.map((n) => `${n.listenAddress}:${this.state.port}`);
  }

  /** Replication factor a keyspace on this ring should use: one replica per node. */
  get replicationFactor(): number {
    return this.state.nodes.length;
  }

  private nodeOptions(node: number): LocalCassandraOptions {
    const options = this.state.nodes[node - 1];
    if (!Number.isInteger(node) || options === undefined) {
      throw new RingError(RING_ERROR_CODES.badOptions, `node must be 1-${this.state.nodes.length}, got ${node}`);
    }
    return options;
  }

  /** The pid of node N's java process, or undefined when it is not running. */
  pidOf(node: number): number | undefined {
    return readPid(path.join(this.nodeOptions(node).dir, 'cassandra.pid'));
  }

  private livePid(node: number): number {
    const pid = this.pidOf(node);
    if (pid === undefined) throw new RingError(RING_ERROR_CODES.nodeNotRunning, `node ${node} (${this.nodeOptions(node).listenAddress}) is not running`);
    return pid;
  }

  /**
   * kill -9 of node N's java process (spawned directly, not through a wrapper, so this is the
   * JVM itself): what a power cut does to one replica. Returns the killed pid.
   */
  killNode(node: number): number {
    const pid = this.livePid(node);
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  /** SIGSTOP of node N's java process: it stops answering but keeps its sockets open, like a long GC pause or a hung host. */
  pauseNode(node: number): number {
    const pid = this.livePid(node);
    process.kill(pid, 'SIGSTOP');
    return pid;
  }

  /** SIGCONT of a paused node. */
  resumeNode(node: number): number {
    const pid = this.livePid(node);
    process.kill(pid, 'SIGCONT');
    return pid;
  }

  /**
   * Starts node N again with its data and config (after killNode or stopNode); a running node
   * is left as it is. Resolves once the node answers CQL and the ring is whole again.
   */
  async restartNode(node: number, log: StackLog = () => undefined): Promise<void> {
    const options = this.nodeOptions(node);
    // Wait for a killed JVM to be gone, so its pid file (or a port it still answers on while it
    // dies, on a loaded machine) is not taken for a live node.
    const deadline = Date.now() + 30_000;
    while (this.pidOf(node) !== undefined && Date.now() < deadline) await sleep(100);
    await startLocalCassandra(options, log);
    await waitForWholeRing(this.state, log, this.state.ringReadyTimeoutMs);
  }

  /**
   * Waits until no node holds hints for another: the writes a node missed while it was away
   * have reached it. Until then that node is still behind, and losing a second node is a
   * double failure for those writes: with a periodic commit log, a node killed before it
   * delivered its hints (or synced the writes it acknowledged) leaves them on one replica of
   * three, and a QUORUM read of the two others returns the older rows (the ring chaos run,
   * seed 4, 3 Dec: node 2 killed 0.2 s after node 1 came back). Returns how long it waited and
   * the hints still pending at `timeoutMs` (0 when delivered).
   */
  async waitForHintsDelivered(timeoutMs: number): Promise<{ waitedMs: number; pending: number }> {
    const started = Date.now();
    for (;;) {
      let pending = 0;
      for (const node of this.state.nodes) pending += (await pendingHintsOf(node.listenAddress!, this.state.port)) ?? 1;
      if (pending === 0 || Date.now() - started >= timeoutMs) return { waitedMs: Date.now() - started, pending };
      await sleep(1_000);
    }
  }

  /** Stops node N cleanly (SIGCONT first in case it is paused, then SIGTERM, SIGKILL after the grace period). */
  async stopNode(node: number, log: StackLog = () => undefined, graceMs = 20_000): Promise<void> {
    const options = this.nodeOptions(node);
    const pid = this.pidOf(node);
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    await stopLocalCassandra(options, (m) => log(`node ${node}: ${m}`), graceMs);
  }

  /** Each node's pid and whether its CQL port answers. */
  async status(): Promise<RingNodeStatus[]> {
    return Promise.all(
      this.state.nodes.map(async (options, i) => {
        const s = await localCassandraStatus(options);
        return { node: i + 1, address: options.listenAddress!, dir: options.dir, pid: s.pid, answering: s.answering };
      }),
    );
  }

  /** Stops every node (the last first, the seed last) and removes ring.json. Idempotent. */
  async stop(log: StackLog = () => undefined): Promise<void> {
    for (let node = this.state.nodes.length; node >= 1; node--) await this.stopNode(node, log);
    rmSync(ringStateFile(this.baseDir), { force: true });
  }
}

/**
 * Starts a ring of `nodes` nodes one after the other, each once the previous answers CQL (two
 * nodes bootstrapping at once is refused by Cassandra), then waits until every node lists the
 * others. Idempotent: nodes of this ring that already run are kept. Writes baseDir/ring.json.
 * Throws RingError when another CQL server holds one of the ring's addresses and port.
 */
export async function startLocalRing(options: LocalRingOptions, log: StackLog): Promise<LocalRing> {
  const baseDir = path.resolve(options.baseDir);
  const recorded = readRingState(baseDir);
  const state = resolveOptions(options);
  if (recorded !== undefined && recorded.nodes.length !== state.nodes.length) {
    const running = await new LocalRing(baseDir, recorded).status();
    if (running.some((n) => n.pid !== undefined)) {
      throw new RingError(
        RING_ERROR_CODES.addressTaken,
        `a ring of ${recorded.nodes.length} nodes already runs in ${baseDir}: run \`npm run stack:down\` before starting one of ${state.nodes.length}`,
      );
    }
  }
  await assertAddressesFree(state, baseDir);
  mkdirSync(baseDir, { recursive: true });
  writeFileSync(ringStateFile(baseDir), `${JSON.stringify(state, null, 2)}\n`);
  const ring = new LocalRing(baseDir, state);
  const started = Date.now();
  for (const [i, node] of state.nodes.entries()) {
    await startLocalCassandra(node, (m) => log(`node ${i + 1}: ${m}`));
  }
  await waitForWholeRing(state, log, state.ringReadyTimeoutMs);
  log(`ring of ${state.nodes.length} nodes (${ring.hosts.join(', ')}) whole after ${Date.now() - started} ms`);
  return ring;
}

/** The ring recorded in `baseDir` (whether or not its nodes run), or undefined when there is none. */
export function openLocalRing(baseDir: string): LocalRing | undefined {
  const resolved = path.resolve(baseDir);
  const state = readRingState(resolved);
  return state === undefined ? undefined : new LocalRing(resolved, state);
}

/** Stops the ring recorded in `baseDir`, if any; true when there was one. */
export async function stopLocalRing(baseDir: string, log: StackLog): Promise<boolean> {
  const ring = openLocalRing(baseDir);
  if (ring === undefined) return false;
  await ring.stop(log);
  return true;
}

/** True when a node of the ring recorded in `baseDir` runs. */
export function localRingRuns(baseDir: string): boolean {
  const state = readRingState(path.resolve(baseDir));
  return state !== undefined && state.nodes.some((n) => {
    const pid = readPid(path.join(n.dir, 'cassandra.pid'));
    return pid !== undefined && isProcessAlive(pid);
  });
}
