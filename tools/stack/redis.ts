import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { portAnswers, type StackLog } from './cassandra.js';

/**
 * Uses the Redis that answers on the URL's port (these machines start one, without persistence:
 * the services warn about it at start-up); otherwise starts redis-server daemonized with an
 * append-only file under the data dir, or explains what to install.
 */
export async function ensureRedis(url: string, dataDir: string, log: StackLog): Promise<void> {
  const parsed = new URL(url);
  const host = parsed.hostname || '127.0.0.1';
  const port = Number(parsed.port || 6379);
  if (await portAnswers(port, host)) {
    log(`Redis answers on ${host}:${port}`);
    return;
  }
  if (!['127.0.0.1', 'localhost'].includes(host)) {
    throw new Error(`Redis at ${url} does not answer, and it is not local, so it cannot be started here`);
  }
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) {
    throw new Error(
      `Redis does not answer on ${host}:${port} and redis-server is not installed. ` +
        'Install it (Debian: apt-get install -y redis-server) or set REDIS_URL to a running Redis.',
    );
  }
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const started = spawnSync(
    'redis-server',
    // An append-only file synced every second: a restart keeps the queues and positions (all but
    // the last second, which the settlers' chain check and the engine's replay cover).
    ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec',
      '--dir', dir, '--logfile', path.join(dir, 'redis.log'), '--pidfile', path.join(dir, 'redis.pid')],
    { encoding: 'utf8' },
  );
  if (started.status !== 0) throw new Error(`redis-server failed to start: ${started.stderr || started.stdout}`);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await portAnswers(port, host)) {
      log(`started redis-server on ${host}:${port} (append-only file in ${dir})`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis-server did not answer on ${host}:${port} within 10 s; see ${dir}/redis.log`);
}
