/**
 * A private redis-server for tests that kill and restart Redis (the shared one on 6379 serves
 * every other test). Without persistence, like the machine's Redis and compose's: a restart
 * after a kill comes back empty. `appendOnly` keeps its data through a restart instead (fsync on
 * every write).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export class TestRedisServer {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly options: { readonly dir: string; readonly appendOnly?: boolean },
  ) {
    mkdirSync(options.dir, { recursive: true });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  start(): void {
    const persistence = this.options.appendOnly === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', this.options.dir], { stdio: 'ignore' });
  }

  /** Stops it (SIGKILL: what it held in memory is gone; SIGTERM: a clean shutdown) and waits for the exit. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}
