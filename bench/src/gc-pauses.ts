/**
 * Cassandra's stop-the-world GC pauses in a time window, from the local stack's GC log
 * (`<data_dir>/cassandra/gc.log`, written with `-Xlog:gc:…:time,uptime`). While Cassandra is
 * paused every batch in flight waits, so a step's latency tail is read next to its pauses.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface GcPauses {
  readonly count: number;
  /** Sum of the pauses, ms. */
  readonly totalMs: number;
  readonly maxMs: number;
}

/** `[2026-11-25T21:54:52.898+0000][1.573s] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 51M->10M(1024M) 13.519ms` */
const PAUSE_LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})([+-]\d{4})\].* Pause .* ([\d.]+)ms$/;

/** The GC log of the local stack under `stackDataDir`, or undefined (another Cassandra, no log). */
export function localGcLog(stackDataDir: string): string | undefined {
  const file = path.join(stackDataDir, 'cassandra', 'gc.log');
  return existsSync(file) ? file : undefined;
}

/** Pauses that ended in [fromMs, toMs) (epoch ms). */
export function gcPausesBetween(file: string, fromMs: number, toMs: number): GcPauses {
  let count = 0;
  let totalMs = 0;
  let maxMs = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = PAUSE_LINE.exec(line);
    if (match === null) continue;
    const zone = match[2]!;
    const atMs = Date.parse(`${match[1]}${zone.slice(0, 3)}:${zone.slice(3)}`);
    if (!(atMs >= fromMs && atMs < toMs)) continue;
    const ms = Number(match[3]);
    count += 1;
    totalMs += ms;
    if (ms > maxMs) maxMs = ms;
  }
  return { count, totalMs: Math.round(totalMs), maxMs: Math.round(maxMs * 10) / 10 };
}
