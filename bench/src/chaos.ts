/**
 * npm run chaos: the chaos run of chaos-run.ts with the flags of USAGE below (`--help`). Prints
 * each fault as it is injected, then the timings, the faults and the checks, and writes them as
 * JSON (bench/results/chaos-<mode>-seed-<seed>-<time>.json); exits 0 only when every check
 * passes. bench/src/chaos.int.test.ts runs a short one in the test suite.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { ROOT, parseScriptArgs } from '@settlement/tools';
import { COMMITLOG_MODES, DEFAULT_CASSANDRA_KILLS, runChaos, type CommitlogMode } from './chaos-run.js';
import { CHAOS_RING_PORT, SETTLER_CLOCK_OFFSETS_S } from './chaos-ring.js';
import { REDIS_PERSISTENCE_MODES, type RedisPersistence } from './private-redis.js';
import { formatTable } from './table.js';

const USAGE = `
npm run chaos [-- FLAGS]: the whole service under faults (SIGKILL of settlers, the ingestor and
the reconciler; Redis restarted; Cassandra stopped and killed -9, then restarted; a settler
paused past its lock; duplicated, reordered and malformed messages), then every balance and
trade checked exactly

  --trades 100000        trades in the stream (funding events come on top)
  --faults 24            faults injected while it runs (at least one of each kind)
  --cassandra-kills 3    kill -9 of Cassandra among them, at least, spread over the stream
  --commitlog periodic   the private Cassandra's commit log: periodic (as npm start and
                         stack:up run it: synced every 10 s, a kill -9 loses the last
                         acknowledged writes) or batch (synced before each acknowledgement,
                         window 2 ms: the hardened variant)
  --redis MODE           the private Redis's persistence: none (like the machine's Redis: a
                         restart comes back empty) or aof-always (fsynced on every write);
                         default none with --commitlog periodic, aof-always with batch
  --seed 1               simulator and fault-schedule seed
  --rate 3000            messages/s sent by the engine stand-in
  --settlers 2           settler processes
  --users 2000           simulated users
  --nodes 1              3: on a private three-node ring (127.0.0.1-3) at RF=3 and
                         local_quorum instead of the single node: the Cassandra kills hit
                         each node in turn (kill -9, restarted, one at a time), a node is
                         paused (SIGSTOP) past the request timeout, no clean restart;
                         settler-1 runs its clock 2 minutes behind, settler-2 2 minutes
                         ahead (libfaketime); reports the settled rate while a node is away
  --ring-port ${CHAOS_RING_PORT}       the ring's CQL port (storage ports: port - 2042, port - 2041);
                         never 9042, the single node's. The ring run's Redis is on 16400
                         (ZMQ 16401-16402), so it can run next to a single-node run
  --port-base N          the run's own ports: Redis on N, ZMQ on N+1 and N+2, Cassandra on
                         N+3 (default 16300, or 16400 with --nodes 3): two runs with
                         different seeds and port bases can run side by side
  -h, --help             this text

Runs on its own Redis (port 16300) and Cassandra (16303); logs in
data/chaos/<commitlog>-seed-<seed>/logs. Exits 0 only when every check passes.
`;

const values = parseScriptArgs(USAGE, {
  trades: { type: 'string', default: '100000' },
  faults: { type: 'string', default: '24' },
  seed: { type: 'string', default: '1' },
  rate: { type: 'string', default: '3000' },
  settlers: { type: 'string', default: '2' },
  users: { type: 'string', default: '2000' },
  'cassandra-kills': { type: 'string', default: String(DEFAULT_CASSANDRA_KILLS) },
  commitlog: { type: 'string', default: 'periodic' },
  redis: { type: 'string' },
  'port-base': { type: 'string' },
  nodes: { type: 'string', default: '1' },
  'ring-port': { type: 'string', default: String(CHAOS_RING_PORT) },
});

function choiceArg<T extends string>(name: string, raw: string | undefined, choices: readonly T[]): T {
  if (!choices.includes(raw as T)) {
    process.stderr.write(`--${name} must be one of ${choices.join(', ')}, got ${raw}\n`);
    process.exit(2);
  }
  return raw as T;
}

function intArg(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}, got ${raw}\n`);
    process.exit(2);
  }
  return n;
}

const trades = intArg('trades', values.trades, 100);
const seed = intArg('seed', values.seed, 0);
const commitlog: CommitlogMode = choiceArg('commitlog', values.commitlog, COMMITLOG_MODES);
const redisPersistence: RedisPersistence | undefined = values.redis === undefined ? undefined : choiceArg('redis', values.redis, REDIS_PERSISTENCE_MODES);
const nodes = intArg('nodes', values.nodes, 1);
if (nodes !== 1 && nodes !== 3) {
  process.stderr.write(`--nodes must be 1 or 3, got ${nodes}\n`);
  process.exit(2);
}
const ringPort = intArg('ring-port', values['ring-port'], 1024);
if (nodes === 3 && (ringPort === 9042 || ringPort > 65_535 || ringPort - 2042 < 1024)) {
  process.stderr.write(`--ring-port must be a free port other than 9042 (the single node's) with port - 2042 >= 1024, got ${ringPort}\n`);
  process.exit(2);
}
const mode = nodes === 3 ? `ring-${commitlog}` : commitlog;
const workDir = path.join(ROOT, 'data', 'chaos', `${mode}-seed-${seed}`);
const logger = pino({ level: 'info', base: { app: 'chaos' } }, pino.destination(2));
const startedAt = new Date();
const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const report = await runChaos({
  trades,
  faults: intArg('faults', values.faults, 1),
  cassandraKills: intArg('cassandra-kills', values['cassandra-kills'], 0),
  commitlog,
  redisPersistence,
  onFault: (f) => process.stdout.write(`fault at ${sec(f.atMs)}: ${f.kind} ${f.target} (${f.durationMs} ms)${f.detail ? `: ${f.detail}` : ''}\n`),
  seed,
  ratePerSecond: intArg('rate', values.rate, 100),
  users: intArg('users', values.users, 10),
  settlers: intArg('settlers', values.settlers, 1),
  // The ring run has its own Redis and ZMQ ports, so it runs next to a single-node run.
  portBase: values['port-base'] === undefined ? (nodes === 3 ? 16_400 : 16_300) : intArg('port-base', values['port-base'], 1024),
  ...(nodes === 3 ? { ring: { port: ringPort }, settlerClockOffsetsS: SETTLER_CLOCK_OFFSETS_S } : {}),
  logger,
  workDir,
});

const s = (ms: number) => `${Math.round(ms / 100) / 10} s`;
process.stdout.write(`\nchaos run, seed ${report.seed}, commit log ${report.commitlog}, Redis persistence ${report.redisPersistence}: ${report.messages} messages, ${report.trades} trades; logs in ${path.relative(ROOT, workDir)}/logs\n`);
process.stdout.write(`set-up ${s(report.setupMs)}, stream sent in ${s(report.sendMs)}, ${Number.isNaN(report.settledMs) ? 'not all settled' : `all settled ${s(report.settledMs)} after the stream started`}, checks ${s(report.checkMs)}, total ${s(report.elapsedMs)}\n`);
process.stdout.write(`injected in the stream: ${report.injected.duplicates} duplicates, ${report.injected.swaps} swaps, ${report.injected.malformed} malformed\n`);
if (report.settlerClocks) process.stdout.write(`settler clocks: ${Object.entries(report.settlerClocks).map(([name, s]) => `${name} ${s > 0 ? '+' : ''}${s} s`).join(', ')}\n`);
if (report.ring) {
  const t = report.ring.throughput;
  process.stdout.write(`ring ${report.ring.hosts.join(', ')}, RF=${report.ring.replicationFactor}, ${report.ring.consistency}: settled ${t.overallPerS} msgs/s overall (offered ${t.offeredPerS}/s), ${t.nodeAwayPerS} msgs/s while a node was away (${t.nodeAwaySeconds} s in all), ${t.allNodesPerS} msgs/s with every node up\n`);
  process.stdout.write(formatTable(['node away', 'from s', 'for s', 'settled', 'msgs/s', 'backlog before', 'backlog after'], t.absences.map((a) => [`node ${a.node} ${a.kind}`, a.fromS, a.seconds, a.settled, a.settledPerS, a.backlogBefore, a.backlogAfter])) + '\n');
}
process.stdout.write('\n');
process.stdout.write(formatTable(['at s', 'fault', 'target', 'took ms', 'detail'], report.faults.map((f) => [Math.round(f.atMs / 100) / 10, f.kind, f.target, f.durationMs, f.detail ?? ''])) + '\n\n');
process.stdout.write(formatTable(['check', 'ok', 'detail'], report.checks.map((c) => [c.name, c.ok ? 'yes' : 'NO', c.detail])) + '\n\n');
const resultsDir = path.join(ROOT, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const jsonFile = path.join(resultsDir, `chaos-${mode}-seed-${seed}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
const kinds = report.faults.reduce<Record<string, number>>((m, f) => ({ ...m, [f.kind]: (m[f.kind] ?? 0) + 1 }), {});
const figures = {
  trades: report.trades,
  messages: report.messages,
  faults: report.faults.length,
  faultsByKind: kinds,
  checksPassed: report.checks.filter((c) => c.ok).length,
  checks: report.checks.length,
};
writeFileSync(jsonFile, `${JSON.stringify({ startedAt: startedAt.toISOString(), settings: { trades, seed, commitlog, nodes, ...(nodes === 3 ? { ringPort } : {}), redisPersistence: report.redisPersistence, rate: Number(values.rate), settlers: Number(values.settlers), users: Number(values.users) }, figures, ...report }, null, 2)}\n`);
writeFileSync(path.join(workDir, 'report.json'), readFileSync(jsonFile));
process.stdout.write(`${report.ok ? 'PASSED' : 'FAILED'}: ${report.trades} trades, ${report.faults.length} faults (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}), ${figures.checksPassed}/${figures.checks} checks; ${path.relative(ROOT, jsonFile)}\n`);
process.exit(report.ok ? 0 : 1);
