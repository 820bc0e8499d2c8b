/**
 * Every app's main.ts answers --help with what it is and the config keys it reads, and exits 0
 * without reading the config or starting anything: run here with a config file that does not
 * exist and Redis/Cassandra addresses where nothing listens, so any start-up would fail.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '@settlement/testing';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runMain(app: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'apps', app, 'src', 'main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, SETTLEMENT_CONFIG: path.join(ROOT, 'data', 'no-such-config.yaml'), REDIS_URL: 'redis://127.0.0.1:1', SCYLLA_HOSTS: '127.0.0.1:1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) reject(new Error(`${app} ${args.join(' ')} did not exit within 30 s (it started?); stdout: ${stdout}; stderr: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

const CASES = [
  { app: 'settler', keys: ['settler.batch_bytes_max', 'settler.shard_lease_ms', 'redis.url', 'scylladb.hosts'] },
  { app: 'ingestor', keys: ['zmq.settlement_port', 'ingestor.reorder_window_ms', 'batch.max_messages', 'redis.url'] },
  { app: 'reconciler', keys: ['reconciliation.interval_seconds', 'reconciliation.sample_size', 'scylladb.keyspace'] },
  { app: 'dashboard', keys: ['dashboard.port', 'dashboard.token', 'redis.prefix'] },
  { app: 'simulator', keys: ['simulator.users', 'zmq.settlement_port', '--linger-ms'] },
] as const;

describe('app --help', () => {
  for (const { app, keys } of CASES) {
    it(`${app}: prints its config keys and exits 0 without starting`, { timeout: 40_000 }, async () => {
      const run = await runMain(app, ['--help']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^Usage: /m);
      expect(run.stdout).toContain('Keys this process reads');
      for (const key of keys) expect(run.stdout).toContain(key);
      // Defaults and env overrides are shown beside the keys.
      if (app !== 'simulator') expect(run.stdout).toMatch(/redis\.url\s+\(required\) \(env REDIS_URL\)/);
      // No log line: nothing was started (a start would log, then fail on the missing config).
      expect(run.stderr).toBe('');
      expect(run.stdout).not.toMatch(/"level":/);
    });
  }

  it('dashboard: a command after the flags is still the settle CLI (main.js help lists its commands)', { timeout: 40_000 }, async () => {
    const run = await runMain('dashboard', ['help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: settle /m);
    expect(run.stdout).toContain('reconcile-status');
  });
});
