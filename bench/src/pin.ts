/**
 * CPU pinning for `npm run bench -- --pin`: Cassandra alone on one core, everything else (Redis,
 * the apps, the load generator) on the other, the way a deployment gives the database machines
 * of its own. On a shared 2-core box the ratio measures how much CPU the Node side takes from
 * Cassandra; pinned, both paths get the same one Cassandra core, and the ratio measures whether
 * the service keeps it as busy as the raw client does.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/** Sets the CPU affinity of every thread of `pid` (threads started later inherit it). */
export function pinProcess(pid: number, cpuList: string): void {
  const result = spawnSync('taskset', ['-a', '-cp', cpuList, String(pid)], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`taskset -a -cp ${cpuList} ${pid} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

/** Every CPU of the machine, as a taskset list. */
export function allCpus(): string {
  return `0-${cpus().length - 1}`;
}
