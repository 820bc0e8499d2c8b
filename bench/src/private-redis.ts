import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { portAnswers } from '@settlement/tools';

/**
 * A Redis of the chaos run's own, so it can be killed without touching anyone else's. It keeps
 * an append-only file fsynced on every write: BullMQ's queues must survive a kill -9 of Redis,
 * which is what a production Redis for this service needs too.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  constructor(readonly port: number, private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'notice', '--logfile', path.join(this.dir, 'redis.log')], { stdio: 'ignore' });
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
}
