/**
 * Every script the README names starts and answers --help (exit 0, its usage on stdout), and an
 * unknown flag gets one line naming it and exit 2. Starting them catches a script that cannot
 * even load, as `npm run bench:ingestor` once could not (an import that needed vitest).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '@settlement/tools';

const SCRIPTS: readonly { file: string; usage: string }[] = [
  { file: 'bench/src/main.ts', usage: 'npm run bench' },
  { file: 'bench/src/chaos.ts', usage: 'npm run chaos' },
  { file: 'bench/src/batch-cost.ts', usage: 'npm run bench:batch-cost' },
  { file: 'bench/src/zmq-cost.ts', usage: 'npm run bench:zmq-cost' },
  { file: 'bench/src/cli-latency.ts', usage: 'npm run bench:cli' },
  { file: 'bench/src/export-throughput.ts', usage: 'npm run bench:export' },
  { file: 'tools/dev/up.ts', usage: 'npm start' },
  { file: 'apps/ingestor/perf/ingest-throughput.ts', usage: 'npm run bench:ingestor' },
  { file: 'apps/settler/perf/settler-throughput.ts', usage: 'npx tsx apps/settler/perf/settler-throughput.ts' },
];

function run(file: string, args: readonly string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
}

describe('scripts', () => {
  it.each(SCRIPTS)('$file --help prints its usage', ({ file, usage }) => {
    const result = run(file, ['--help']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.startsWith(`${usage} [`)).toBe(true);
    expect(result.stdout).toMatch(/^ {2}-h, --help +this text$/m);
  });

  it('an unknown flag is named, with the usage, exit 2', () => {
    const result = run('bench/src/main.ts', ['--rate', '100', '--bogus']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe("Unknown option '--bogus'");
    expect(result.stderr).toContain('npm run bench [-- FLAGS]');
  });
});
