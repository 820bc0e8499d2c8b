/**
 * Runs one app of this repository as a child process (from source through tsx), with its
 * output in a log file, for the one-command demo, the benchmark and the chaos run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ChildAppOptions {
  /** App folder name under apps/. */
  readonly app: string;
  /** Runs this script (relative to the repository) instead of apps/<app>/src/main.ts. */
  readonly entry?: string;
  /** Label for logs, e.g. "settler-2". */
  readonly name: string;
  readonly env: NodeJS.ProcessEnv;
  readonly args?: readonly string[];
  /** Folder for <name>.log. */
  readonly logDir: string;
  /** Also copy the child's output to this stream (e.g. process.stderr). */
  readonly echo?: NodeJS.WritableStream;
  /** Called with the pid of each process started (the chaos run records them, chaos-leftovers.ts). */
  readonly onStart?: (pid: number | undefined) => void;
}

export class ChildApp {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private readonly log: WriteStream;
  restarts = 0;

  constructor(readonly options: ChildAppOptions) {
    mkdirSync(options.logDir, { recursive: true });
    this.log = createWriteStream(path.join(options.logDir, `${options.name}.log`), { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): this {
    const entry = path.join(ROOT, this.options.entry ?? path.join('apps', this.options.app, 'src', 'main.ts'));
    // e.g. SETTLEMENT_CHILD_NODE_FLAGS="--cpu-prof --cpu-prof-dir=data/prof" to profile the apps
    // a benchmark or the chaos run starts (such flags are not allowed in NODE_OPTIONS).
    const nodeFlags = (process.env['SETTLEMENT_CHILD_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', entry, ...(this.options.args ?? [])], {
      cwd: ROOT,
      env: this.options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        this.log.write(chunk);
        this.options.echo?.write(chunk);
      });
    }
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
    this.child = child;
    this.options.onStart?.(child.pid);
    return this;
  }

  /** Sends a signal; resolves with the exit code once the process is gone (SIGKILL after graceMs). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child!.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop('SIGKILL');
    this.restarts += 1;
    this.start();
  }

  waitExit(): Promise<number | null> {
    return this.exited;
  }

  close(): void {
    this.log.end();
  }
}
