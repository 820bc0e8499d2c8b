/**
 * npm run bench:cli — how long `settle` takes to answer, as an operator types it: wall time of
 * `node apps/dashboard/bin/settle.mjs --help` and `… --json balances <user>` (one Redis and one
 * Cassandra round trip), each run as a fresh process, from the bundle (dist/settle, built by
 * `npm ci`) and, for comparison, from source through tsx (SETTLE_FROM_SOURCE=1). Every run's
 * output is checked (exit 0, the usage, the user's JSON), so a broken CLI cannot look fast; it
 * exits 1 when a bundle median is 1 s or more, the target of issue 22.
 *
 * Needs the stack and the config's keyspace (`npm run stack:up`). Flags: USAGE (`--help`).
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseScriptArgs, ROOT } from '@settlement/tools';
import { formatTable } from './table.js';

const USAGE = `
npm run bench:cli [-- FLAGS]: wall time of settle --help and settle balances, bundle vs tsx

  --runs 9              runs per command from the bundle (the median is reported)
  --source-runs 3       runs per command from source through tsx (0: skip)
  --user 1001           user whose balances are read
  --config FILE         config of the stack (default: $SETTLEMENT_CONFIG or config/settlement.yaml)
  -h, --help            this text
`;

/** The target: a command answers in under a second. */
const TARGET_MS = 1_000;
const BIN = path.join(ROOT, 'apps', 'dashboard', 'bin', 'settle.mjs');

const flags = parseScriptArgs(USAGE, {
  runs: { type: 'string', default: '9' },
  'source-runs': { type: 'string', default: '3' },
  user: { type: 'string', default: '1001' },
  config: { type: 'string' },
});

function count(name: string, raw: string, min: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > 1000) {
    process.stderr.write(`--${name} must be an integer from ${min} to 1000, got "${raw}"\n`);
    process.exit(2);
  }
  return Number(raw);
}
const runs = count('runs', flags.runs, 1);
const sourceRuns = count('source-runs', flags['source-runs'], 0);
if (!/^\d{1,19}$/.test(flags.user)) {
  process.stderr.write(`--user must be a decimal user id, got "${flags.user}"\n`);
  process.exit(2);
}
const configArgs = flags.config === undefined ? [] : ['--config', flags.config];

interface Command {
  readonly name: string;
  readonly args: readonly string[];
  readonly check: (stdout: string) => boolean;
}

const COMMANDS: readonly Command[] = [
  { name: 'settle --help', args: ['--help'], check: (out) => out.startsWith('Usage: settle ') && out.includes('reconcile-status') },
  {
    name: `settle --json balances ${flags.user}`,
    args: [...configArgs, '--json', 'balances', flags.user],
    check: (out) => (JSON.parse(out) as { userId?: unknown }).userId === flags.user,
  },
];

function timeOnce(command: Command, fromSource: boolean): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [BIN, ...command.args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, SETTLE_FROM_SOURCE: fromSource ? '1' : '' },
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  let ok = result.status === 0;
  try {
    ok &&= command.check(result.stdout);
  } catch {
    ok = false;
  }
  if (!ok) {
    process.stderr.write(`${command.name} failed (exit ${result.status}): ${result.stderr.trim() || result.stdout.slice(0, 300)}\n`);
    process.exit(1);
  }
  return ms;
}

function summary(samples: number[]): { median: number; min: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

// Builds the bundle if it is missing or stale, outside the measurement.
timeOnce(COMMANDS[0]!, false);

const rows: string[][] = [];
let slow = false;
for (const command of COMMANDS) {
  for (const [label, n, fromSource] of [['bundle', runs, false], ['tsx (source)', sourceRuns, true]] as const) {
    if (n === 0) continue;
    const s = summary(Array.from({ length: n }, () => timeOnce(command, fromSource)));
    if (!fromSource && s.median >= TARGET_MS) slow = true;
    rows.push([command.name, label, String(n), s.median.toFixed(0), s.min.toFixed(0), s.max.toFixed(0)]);
  }
}
const [load1] = loadavg();
process.stdout.write(`${cpus().length} cores, load average ${load1!.toFixed(2)} at the end\n`);
process.stdout.write(`${formatTable(['command', 'from', 'runs', 'median ms', 'min ms', 'max ms'], rows)}\n`);
if (slow) {
  process.stdout.write(`FAILED: a bundle median is ${TARGET_MS} ms or more\n`);
  process.exit(1);
}
process.stdout.write(`PASSED: every bundle median under ${TARGET_MS} ms\n`);
