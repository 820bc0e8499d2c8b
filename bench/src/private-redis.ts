import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { portAnswers } from '@settlement/tools';

/**
 * How the private Redis keeps its data:
 * - `none`: no persistence at all (`appendonly no`, `save ""`), like the Redis these machines
 *   run and the one the local stack starts: a restart comes back EMPTY (every queue, position
 *   and job chain gone).
 * - `aof-always`: an append-only file fsynced on every write, so a kill -9 loses nothing
 *   acknowledged (the hardened variant).
 */
export type RedisPersistence = 'none' | 'aof-always';

export const REDIS_PERSISTENCE_MODES: readonly RedisPersistence[] = ['none', 'aof-always'];

/** A Redis of the chaos run's own, so it can be killed (and emptied) without touching anyone else's. */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly dir: string,
    readonly persistence: RedisPersistence = 'aof-always',
    /** Called with the pid of each redis-server started. */
    private readonly onStart: (pid: number | undefined) => void = () => undefined,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const persistence = this.persistence === 'aof-always' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'notice', '--logfile', path.join(this.dir, 'redis.log')], { stdio: 'ignore' });
    this.onStart(this.child.pid);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (await portAnswers(this.port)) return;
      if (this.child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${this.child.exitCode}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }

  /** kill -9, as a crash would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Deletes its data files (append-only file or folder, RDB snapshot): the next start is empty. Only while stopped. */
  deleteData(): void {
    for (const name of readdirSync(this.dir)) {
      if (name.startsWith('appendonly') || name.endsWith('.rdb')) rmSync(path.join(this.dir, name), { recursive: true, force: true });
    }
  }
}
