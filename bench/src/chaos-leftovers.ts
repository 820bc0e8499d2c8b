/**
 * What a chaos run started, recorded per port base in the machine's temp folder, so a run that
 * never reached its own clean-up leaves nothing behind for the next run on those ports. A vitest
 * timeout does not stop the test's code: the settlers, ingestor, reconciler, Redis and Cassandra
 * of a timed-out run kept running, and the next CI run's ingestor crash-looped on EADDRINUSE
 * (4 Dec). Every run therefore starts by killing what the last one on its ports recorded, and the
 * chaos test kills its own run's processes when it ends, timed out or not.
 *
 * The record survives a fresh clone (the temp folder, not the work folder), and a process is
 * killed only if it is still the one recorded: same pid and same start time (or, for a Cassandra
 * pid file, a command line naming the run's folder), never a process that reused the pid.
 */
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive } from '@settlement/tools';
import { sleep } from './chaos-wait.js';

/** How deep under a recorded folder Cassandra pid files are looked for (ring/node-N/cassandra.pid). */
const PID_FILE_DEPTH = 3;

export class ChaosLeftovers {
  readonly file: string;

  constructor(portBase: number, tmpDir = os.tmpdir()) {
    this.file = path.join(tmpDir, `settlement-chaos-${portBase}.pids`);
  }

  /** A process the run started (app, Redis); killed by a later reap if it still runs. */
  recordProcess(pid: number | undefined, name: string): void {
    if (pid === undefined) return;
    const started = processStartTicks(pid);
    if (started !== undefined) appendFileSync(this.file, `pid ${pid} ${started} ${name}\n`);
  }

  /** The run's work folder: the Cassandra pid files under it name the run's nodes. */
  recordFolder(dir: string): void {
    appendFileSync(this.file, `dir ${dir}\n`);
  }

  /**
   * SIGKILLs every recorded process still running, waits until they are gone (their ports free),
   * and forgets the record. Returns what it killed, e.g. "settler-2 (pid 4711)".
   */
  async reap(goneTimeoutMs = 15_000): Promise<string[]> {
    if (!existsSync(this.file)) return [];
    const victims: { pid: number; name: string }[] = [];
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (line.startsWith('pid ')) {
        const [pidText, started, ...name] = line.slice('pid '.length).split(' ');
        const pid = Number(pidText);
        if (Number.isInteger(pid) && processStartTicks(pid) === started) victims.push({ pid, name: name.join(' ') });
      } else if (line.startsWith('dir ')) {
        // The rest of the line, spaces and all.
        const dir = line.slice('dir '.length);
        for (const pidFile of findFiles(dir, 'cassandra.pid', PID_FILE_DEPTH)) {
          const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
          if (Number.isInteger(pid) && pid > 0 && commandLine(pid).includes(path.dirname(pidFile))) victims.push({ pid, name: `cassandra (${pidFile})` });
        }
      }
    }
    for (const { pid } of victims) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    const deadline = Date.now() + goneTimeoutMs;
    while (victims.some((v) => isProcessAlive(v.pid)) && Date.now() < deadline) await sleep(100);
    rmSync(this.file, { force: true });
    return victims.map((v) => `${v.name} (pid ${v.pid})`);
  }
}

/** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); undefined when it is gone. */
function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function findFiles(dir: string, name: string, depth: number): string[] {
  if (depth < 0 || !existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isFile() && entry.name === name) found.push(full);
    else if (entry.isDirectory()) found.push(...findFiles(full, name, depth - 1));
  }
  return found;
}
