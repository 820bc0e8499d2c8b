/**
 * The chaos run's processes (ingestor, settlers, reconciler) as child processes under a
 * supervisor: started, killed and restarted by the faults, and watched for exits nobody asked for.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { heartbeatPattern } from '@settlement/runtime';
import { ChildApp } from '@settlement/tools';
import { clockSkewEnv } from './chaos-ring.js';
import type { ProcessExit } from './chaos-types.js';
import { sleep } from './chaos-wait.js';

/**
 * A child process under a supervisor, as a container restart policy would keep it: one that
 * exits without being told to is recorded (a finding of the run) and started again.
 */
export class Supervised {
  readonly unexpectedExits: ProcessExit[] = [];
  /** How the final SIGTERM ended: the exit code, 'hung' (killed after the grace time) or 'not running'. */
  finalExit: number | null | 'hung' | 'not running' | undefined;
  private intendedDown = false;

  constructor(
    readonly app: ChildApp,
    private readonly clockMs: () => number,
    private readonly log: Logger,
  ) {}

  get name(): string {
    return this.app.options.name;
  }

  get pid(): number | undefined {
    return this.app.pid;
  }

  start(): this {
    this.intendedDown = false;
    this.app.start();
    const pid = this.app.pid;
    void this.app.waitExit().then((code) => {
      if (this.intendedDown || this.app.pid !== pid) return;
      this.unexpectedExits.push({ name: this.name, atMs: this.clockMs(), code });
      this.log.error({ process: this.name, pid, code }, 'process exited by itself; starting it again');
      setTimeout(() => {
        if (!this.intendedDown && !this.app.running) this.start();
      }, 1000);
    });
    return this;
  }

  /** Never started again: the run is being abandoned (its processes are killed by the caller). */
  halt(): void {
    this.intendedDown = true;
  }

  async kill(): Promise<void> {
    this.intendedDown = true;
    await this.app.stop('SIGKILL');
  }

  signal(signal: NodeJS.Signals): void {
    this.app.signal(signal);
  }

  /** SIGTERM; a process that has not exited after `graceMs` is killed and counts as hung. */
  async stop(graceMs: number): Promise<void> {
    this.intendedDown = true;
    if (!this.app.running) {
      this.finalExit ??= 'not running';
      return;
    }
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
    }, graceMs);
    const code = await this.app.stop('SIGTERM', graceMs);
    clearTimeout(timer);
    this.finalExit = hung ? 'hung' : code;
  }
}

/** The run's processes: one ingestor, the settlers, one reconciler. */
export interface ChaosApps {
  readonly ingestor: Supervised;
  readonly settlers: readonly Supervised[];
  readonly reconciler: Supervised;
  /** All of them, the ingestor first. */
  readonly all: readonly Supervised[];
  /** Settler name → wall-clock offset, s (only those shifted). */
  readonly settlerClocks: Record<string, number>;
}

export interface StartAppsOptions {
  /** The run's config file, handed to every process. */
  readonly configFile: string;
  readonly logDir: string;
  readonly settlers: number;
  /** Wall-clock offsets of settler 1, 2, … in seconds (libfaketime); the others keep the machine's clock. */
  readonly settlerClockOffsetsS?: readonly number[];
  /** Time on the run's clock, ms (when an unexpected exit happened). */
  readonly clockMs: () => number;
  readonly log: Logger;
  /** Called with the pid of every process started, restarts included. */
  readonly onStart?: (name: string, pid: number | undefined) => void;
}

/** Starts the ingestor, the settlers and the reconciler, each under its supervisor. */
export function startApps(options: StartAppsOptions): ChaosApps {
  const env = { ...process.env, SETTLEMENT_CONFIG: options.configFile, LOG_LEVEL: 'info' };
  const supervise = (app: string, name: string, extraEnv?: NodeJS.ProcessEnv) =>
    new Supervised(new ChildApp({ app, name, env: { ...env, ...extraEnv }, logDir: options.logDir, onStart: (pid) => options.onStart?.(name, pid) }), options.clockMs, options.log).start();
  const ingestor = supervise('ingestor', 'ingestor');
  // Settlers on hosts whose clocks disagree: settler N's wall clock shifted by settlerClockOffsetsS[N-1].
  const settlerClocks: Record<string, number> = {};
  const settlers = Array.from({ length: options.settlers }, (_, i) => {
    const offsetS = options.settlerClockOffsetsS?.[i];
    if (offsetS !== undefined) settlerClocks[`settler-${i + 1}`] = offsetS;
    return supervise('settler', `settler-${i + 1}`, offsetS === undefined ? undefined : clockSkewEnv(offsetS));
  });
  const reconciler = supervise('reconciler', 'reconciler');
  return { ingestor, settlers, reconciler, all: [ingestor, ...settlers, reconciler], settlerClocks };
}

/** Waits until each app has published as many heartbeats as it has processes: all are up. */
export async function waitForHeartbeats(redis: Redis, prefix: string, want: Record<string, number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let have: Record<string, number> = {};
  while (Date.now() < deadline) {
    have = {};
    for (const key of await redis.keys(heartbeatPattern(prefix))) {
      const app = key.slice(heartbeatPattern(prefix).length - 1).split(':')[0]!;
      have[app] = (have[app] ?? 0) + 1;
    }
    if (Object.entries(want).every(([app, n]) => (have[app] ?? 0) >= n)) return;
    await sleep(200);
  }
  throw new Error(`processes not up after ${timeoutMs} ms: heartbeats ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
}
