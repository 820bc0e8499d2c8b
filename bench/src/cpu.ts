import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readPid } from '@settlement/tools';

const CLOCK_TICKS_PER_S = 100;

/** CPU seconds (user + system) a process has used so far, from /proc; undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Measures the share of a core each named process used between start() and stop(). */
export class CpuMeter {
  private readonly startCpu = new Map<string, number>();
  private startedAt = 0;

  constructor(private readonly pids: () => Record<string, number | undefined>) {}

  start(): void {
    this.startedAt = performance.now();
    this.startCpu.clear();
    for (const [name, pid] of Object.entries(this.pids())) {
      const cpu = pid === undefined ? undefined : cpuSeconds(pid);
      if (cpu !== undefined) this.startCpu.set(name, cpu);
    }
  }

  /** Cores used per process (1.0 = one full core) over the interval. */
  stop(): Record<string, number> {
    const elapsedS = (performance.now() - this.startedAt) / 1000;
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids())) {
      const before = this.startCpu.get(name);
      const after = pid === undefined ? undefined : cpuSeconds(pid);
      if (before !== undefined && after !== undefined && elapsedS > 0) out[name] = Math.round(((after - before) / elapsedS) * 100) / 100;
    }
    return out;
  }
}

/**
 * Waits until a process used less than `coresMax` in each of `quietSeconds` seconds in a row (or `timeoutMs`
 * passed): Cassandra compacts what a phase wrote for a while after it, and that work would be
 * charged to whatever is measured next. Returns the wait, ms.
 */
export async function waitUntilQuiet(pid: number | undefined, coresMax: number, quietSeconds: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  if (pid === undefined) return 0;
  // Several quiet seconds in a row: a memtable flush and the compaction it starts can leave a
  // quiet second between them.
  let quiet = 0;
  while (quiet < quietSeconds && Date.now() - started <= timeoutMs) {
    const before = cpuSeconds(pid);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = cpuSeconds(pid);
    if (before === undefined || after === undefined) return Date.now() - started;
    quiet = after - before < coresMax ? quiet + 1 : 0;
  }
  return Date.now() - started;
}

/**
 * The pid of the one process whose command line contains `needle`, when there is exactly one:
 * e.g. a Cassandra started by another checkout's local stack, whose pid file is not ours.
 */
export function findOnlyProcess(needle: string): number | undefined {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found.length === 1 ? found[0] : undefined;
}

/**
 * The local Cassandra's pid: from the local stack's pid file under `stackDataDir` (the config's
 * data_dir of `npm run stack:up`), else the one CassandraDaemon process running.
 */
export function findCassandraPid(stackDataDir: string): number | undefined {
  return readPid(path.join(stackDataDir, 'cassandra', 'cassandra.pid')) ?? findOnlyProcess('org.apache.cassandra.service.CassandraDaemon');
}
