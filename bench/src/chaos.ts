/**
 * npm run chaos: the chaos run of chaos-run.ts with the flags of USAGE below (`--help`). Prints
 * the timings, the faults and the checks; exits 0 only when every check passes.
 * bench/src/chaos.int.test.ts runs a short one in the test suite.
 */
import path from 'node:path';
import pino from 'pino';
import { ROOT, parseScriptArgs } from '@settlement/tools';
import { runChaos } from './chaos-run.js';
import { formatTable } from './table.js';

const USAGE = `
npm run chaos [-- FLAGS]: the whole service under faults (SIGKILL of settlers, the ingestor and
the reconciler; Redis and Cassandra restarted; a settler paused past its lock; duplicated,
reordered and malformed messages), then every balance and trade checked exactly

  --trades 100000   trades in the stream (funding events come on top)
  --faults 24       faults injected while it runs
  --seed 1          simulator and fault-schedule seed
  --rate 3000       messages/s sent by the engine stand-in
  --settlers 2      settler processes
  --users 2000      simulated users
  -h, --help        this text

Runs on its own Redis (port 16300) and Cassandra (16303); logs in data/chaos/seed-<seed>/logs.
Exits 0 only when every check passes.
`;

const values = parseScriptArgs(USAGE, {
  trades: { type: 'string', default: '100000' },
  faults: { type: 'string', default: '24' },
  seed: { type: 'string', default: '1' },
  rate: { type: 'string', default: '3000' },
  settlers: { type: 'string', default: '2' },
  users: { type: 'string', default: '2000' },
});

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
const workDir = path.join(ROOT, 'data', 'chaos', `seed-${seed}`);
const logger = pino({ level: 'info', base: { app: 'chaos' } }, pino.destination(2));

const report = await runChaos({
  trades,
  faults: intArg('faults', values.faults, 1),
  seed,
  ratePerSecond: intArg('rate', values.rate, 100),
  users: intArg('users', values.users, 10),
  settlers: intArg('settlers', values.settlers, 1),
  portBase: 16_300,
  logger,
  workDir,
});

const s = (ms: number) => `${Math.round(ms / 100) / 10} s`;
process.stdout.write(`\nchaos run, seed ${report.seed}: ${report.messages} messages, ${report.trades} trades; logs in ${path.relative(ROOT, workDir)}/logs\n`);
process.stdout.write(`set-up ${s(report.setupMs)}, stream sent in ${s(report.sendMs)}, ${Number.isNaN(report.settledMs) ? 'not all settled' : `all settled ${s(report.settledMs)} after the stream started`}, checks ${s(report.checkMs)}, total ${s(report.elapsedMs)}\n`);
process.stdout.write(`injected in the stream: ${report.injected.duplicates} duplicates, ${report.injected.swaps} swaps, ${report.injected.malformed} malformed\n\n`);
process.stdout.write(formatTable(['at s', 'fault', 'target', 'took ms'], report.faults.map((f) => [Math.round(f.atMs / 100) / 10, f.kind, f.target, f.durationMs])) + '\n\n');
process.stdout.write(formatTable(['check', 'ok', 'detail'], report.checks.map((c) => [c.name, c.ok ? 'yes' : 'NO', c.detail])) + '\n\n');
process.stdout.write(`${report.ok ? 'PASSED' : 'FAILED'}: ${report.faults.length} faults, ${report.checks.filter((c) => c.ok).length}/${report.checks.length} checks\n`);
process.exit(report.ok ? 0 : 1);
