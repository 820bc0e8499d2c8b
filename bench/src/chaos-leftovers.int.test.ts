import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive, waitFor } from '@settlement/tools';
import { ChaosLeftovers } from './chaos-leftovers.js';

/**
 * A long-lived process whose command line ends with `arg` (after `--`, so node does not take a
 * `-D…` argument for one of its options and exit: the stand-in Cassandra died at once, and a reap
 * that came after that missed it, CI on 5 Dec), once its command line shows so (until the child
 * has exec'd, /proc/<pid>/cmdline is still its parent's).
 */
async function idleProcess(arg = 'idle'): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => undefined, 120000)', '--', arg], { stdio: 'ignore' });
  await waitFor(`process ${child.pid} started`, () => {
    try {
      return readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes(arg);
    } catch {
      return false;
    }
  }, 10_000, 10);
  return child;
}

describe('ChaosLeftovers', () => {
  const spawned: ChildProcess[] = [];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'chaos-leftovers-'));
  afterEach(() => {
    for (const child of spawned.splice(0)) child.kill('SIGKILL');
  });

  it('kills the recorded processes and the Cassandra named by a pid file under a recorded folder', async () => {
    const registry = new ChaosLeftovers(1, tmp);
    const app = await idleProcess();
    const workDir = path.join(tmp, 'work');
    const nodeDir = path.join(workDir, 'ring', 'node-2');
    mkdirSync(nodeDir, { recursive: true });
    const cassandra = await idleProcess(`-Dcassandra.storagedir=${nodeDir}`);
    spawned.push(app, cassandra);
    writeFileSync(path.join(nodeDir, 'cassandra.pid'), `${cassandra.pid}\n`);
    registry.recordFolder(workDir);
    registry.recordProcess(app.pid, 'settler-1');

    const killed = await registry.reap();

    expect(killed.sort()).toEqual([`cassandra (${path.join(nodeDir, 'cassandra.pid')}) (pid ${cassandra.pid})`, `settler-1 (pid ${app.pid})`].sort());
    expect(isProcessAlive(app.pid!)).toBe(false);
    expect(isProcessAlive(cassandra.pid!)).toBe(false);
    // The record is gone with them: a second reap has nothing to do.
    expect(await registry.reap()).toEqual([]);
  });

  it('leaves a process that only shares a recorded pid alone', async () => {
    const registry = new ChaosLeftovers(2, tmp);
    const other = await idleProcess();
    const stranger = await idleProcess(path.join(tmp, 'elsewhere'));
    spawned.push(other, stranger);
    // The pid as an earlier process had it (another start time), and a pid file whose process
    // does not name the folder: both as after a reboot or a pid reused.
    writeFileSync(registry.file, `pid ${other.pid} 1 settler-2\n`);
    const workDir = path.join(tmp, 'work-2');
    mkdirSync(workDir, { recursive: true });
    writeFileSync(path.join(workDir, 'cassandra.pid'), `${stranger.pid}\n`);
    registry.recordFolder(workDir);

    expect(await registry.reap()).toEqual([]);
    expect(isProcessAlive(other.pid!)).toBe(true);
    expect(isProcessAlive(stranger.pid!)).toBe(true);
  });

  it('has nothing to do without a record', async () => {
    const registry = new ChaosLeftovers(3, tmp);
    rmSync(registry.file, { force: true });
    expect(await registry.reap()).toEqual([]);
  });
});
