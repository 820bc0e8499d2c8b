/**
 * The processes under measurement besides the apps: Cassandra (its pid, GC log, quiet periods)
 * and, with --pin, which CPU each process runs on.
 */
import path from 'node:path';
import type { SettlementConfig } from '@settlement/config';
import type { LocalRing } from '@settlement/tools';
import { say } from './bench-log.js';
import { findCassandraPid, waitUntilQuiet } from './cpu.js';
import { localGcLog } from './gc-pauses.js';
import { allCpus, pinProcess } from './pin.js';

export interface BenchMachine {
  /** On a ring, node 1 (it waits for quiet and is pinned); nodes 2 and 3 are in otherNodes. */
  readonly cassandraPid: number | undefined;
  /** The ring's other nodes, metered as cassandra-2/3; none on the local stack. */
  otherNodes(): Record<string, number | undefined>;
  /** Cassandra's GC log (local stack only). */
  readonly gcLog: string | undefined;
  /** With --pin, puts `pid` on CPU 1 with the bench (and back on every CPU at exit); else nothing. */
  pinToOtherCores(pid: number): void;
  /** Waits until Cassandra finished compacting what the phase before wrote (`what`: for the log). */
  waitForQuiet(what: string): Promise<void>;
}

/** `config`: the bench's, whose data_dir is the stack's plus /bench. With `pin`, pins Cassandra and this process now. */
export function benchMachine(config: Readonly<SettlementConfig>, ring: LocalRing | undefined, pin: boolean): BenchMachine {
  const stackDataDir = path.join(config.data_dir, '..');
  const cassandraPid = ring !== undefined ? ring.pidOf(1) : findCassandraPid(stackDataDir);
  // --pin: Cassandra on CPU 0; this process (and so the apps it starts) and Redis on CPU 1.
  const pinned: number[] = [];
  const pinToOtherCores = (pid: number): void => {
    if (!pin) return;
    pinProcess(pid, '1');
    pinned.push(pid);
  };
  if (pin) {
    if (cassandraPid === undefined) throw new Error('--pin needs the local Cassandra (its pid was not found)');
    pinProcess(cassandraPid, '0');
    pinned.push(cassandraPid);
    // Put back at the end, whatever the outcome: Cassandra and Redis outlive the bench.
    process.once('exit', () => {
      for (const pid of pinned) {
        try {
          pinProcess(pid, allCpus());
        } catch {
          // Gone already.
        }
      }
    });
    process.once('SIGINT', () => process.exit(130));
    pinToOtherCores(process.pid);
    say('pinned: Cassandra on CPU 0; Redis, the apps and the bench on CPU 1');
  }
  return {
    cassandraPid,
    otherNodes: () => (ring === undefined ? {} : { 'cassandra-2': ring.pidOf(2), 'cassandra-3': ring.pidOf(3) }),
    gcLog: ring !== undefined ? undefined : localGcLog(stackDataDir),
    pinToOtherCores,
    async waitForQuiet(what: string): Promise<void> {
      // A ring node gossips and sends hints all the time: on a loaded machine it may never fall
      // under 0.15 cores, so a ring bench waits at most 20 s per phase.
      const waitedMs = await waitUntilQuiet(cassandraPid, 0.15, 3, ring === undefined ? 90_000 : 20_000);
      say(`${what}: waited ${Math.round(waitedMs / 1000)} s for Cassandra to finish compacting`);
    },
  };
}
