/**
 * The chaos run and the bench on a private local three-node ring (tools/stack/ring.ts): node N on
 * 127.0.0.N, the keyspace at RF=3, every request at local_quorum.
 *
 * The ring runs on its own ports (default CQL 29042 for the chaos run, 26042 for the bench;
 * Cassandra's storage ports follow the CQL port, port − 2042 and port − 2041), never on
 * 9042/7000/7001: the machine's single-node Cassandra holds 127.0.0.1 on those, and tests of other
 * checkouts use it. Its folders are under data/ (chaos: the run's work folder; bench:
 * data/bench/ring-<port>).
 *
 * What the chaos run does differently on a ring (runChaos with `ring`):
 * - `kill-cassandra` is a kill -9 of one node, the nodes in turn (1, 2, 3, 1, …) so each is
 *   killed at least once with three kills, then restarted (restartNode waits until the node
 *   answers and every node lists it again): one at a time, never two down at once;
 * - `pause-node` (ring only) stops one node with SIGSTOP for longer than the client's request
 *   timeout (`scylladb.request_timeout_ms`), then SIGCONT: a hung replica that keeps its sockets;
 * - `restart-cassandra` (a clean SIGTERM of the single node) is not used: kill -9 is the harder case;
 * - settler-1 runs with its clock 2 minutes behind and settler-2 2 minutes ahead (libfaketime,
 *   see clockSkewEnv); with more settlers, the others keep the machine's clock;
 * - the settled-message rate is sampled every second from the stored watermarks, and the rate
 *   while a node was down or paused is reported against the overall one (SettledRate).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startLocalRing, type LocalRing } from '@settlement/tools';

/** CQL port of the chaos run's ring (storage 27000/27001). */
export const CHAOS_RING_PORT = 29_042;
/** CQL port of the bench's ring (storage 24000/24001). */
export const BENCH_RING_PORT = 26_042;
/** Heap of each ring node, MiB: three of them next to the service on a loaded 2-core machine. */
export const RING_HEAP_MB = 512;
/** The consistency every request of a ring run uses: read-your-writes at RF=3. */
export const RING_CONSISTENCY = 'local_quorum' as const;
/** The clock offsets of the first two settlers on a ring, seconds. */
export const SETTLER_CLOCK_OFFSETS_S: readonly number[] = [-120, 120];

const FAKETIME_LIBRARY = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * Environment that runs a Node process with its wall clock shifted by `offsetS` seconds, its
 * monotonic clock (timers, performance.now) left alone: exactly what
 * `FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '±Ns' node …` sets up (LD_PRELOAD of Debian's
 * libfaketime and FAKETIME). Not through /usr/bin/faketime itself: it forks and waits for its
 * child, so the pid the harness holds (and kills, stops and resumes) would be faketime's, not the
 * settler's.
 */
export function clockSkewEnv(offsetS: number): NodeJS.ProcessEnv {
  if (!existsSync(FAKETIME_LIBRARY)) {
    throw new Error(`${FAKETIME_LIBRARY} is missing: install Debian's faketime (apt-get install -y faketime; tools/testing/system-deps.sh does it)`);
  }
  return {
    LD_PRELOAD: FAKETIME_LIBRARY,
    FAKETIME: `${offsetS >= 0 ? '+' : ''}${offsetS}s`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

/** The ring's folder for a bench on `port`. */
export function benchRingDir(port: number): string {
  return path.join(ROOT, 'data', 'bench', `ring-${port}`);
}

/** Starts (or reuses) a three-node ring on `port` in `baseDir`, 512 MiB a node. */
export async function startRing(baseDir: string, port: number, log: (message: string) => void, yamlOverrides?: Record<string, unknown>): Promise<LocalRing> {
  if (port === 9042) throw new Error('the ring must not use port 9042: the machine\'s single-node Cassandra holds 127.0.0.1:9042/7000/7001');
  return startLocalRing({ nodes: 3, baseDir, port, heapMb: RING_HEAP_MB, clusterName: `settlement-ring-${port}`, ...(yamlOverrides === undefined ? {} : { yamlOverrides }) }, log);
}

/** The `scylladb` section of a config pointed at the ring: its contact points, RF and local_quorum. */
export function ringScyllaSection(ring: LocalRing): { hosts: string[]; replication_factor: number; consistency: typeof RING_CONSISTENCY } {
  return { hosts: ring.hosts, replication_factor: ring.replicationFactor, consistency: RING_CONSISTENCY };
}

/** A time span during which one node was away: killed until back in the ring, or paused. */
export interface NodeAbsence {
  readonly kind: 'kill -9' | 'SIGSTOP';
  readonly node: number;
  /** Since the stream started, ms. */
  readonly fromMs: number;
  readonly toMs: number;
}

export interface AbsenceThroughput {
  readonly kind: NodeAbsence['kind'];
  readonly node: number;
  readonly fromS: number;
  readonly seconds: number;
  /** Messages settled during the absence. */
  readonly settled: number;
  readonly settledPerS: number;
  /** Messages sent and not yet settled at its start and at its end. */
  readonly backlogBefore: number;
  readonly backlogAfter: number;
}

export interface RingThroughput {
  /** Messages settled per second from the stream's start until the last one settled. */
  readonly overallPerS: number;
  /**
   * The same while a node was away (every absence before the last message settled, together).
   * A rate is the service's capacity only while a backlog waited (see each absence's backlog);
   * without one it is the offered rate.
   */
  readonly nodeAwayPerS: number;
  readonly nodeAwaySeconds: number;
  /** While every node was there, within the same span. */
  readonly allNodesPerS: number;
  readonly offeredPerS: number;
  readonly absences: AbsenceThroughput[];
}

/**
 * Messages settled over time, from the stored watermarks: a shard's watermark is the sequence of
 * the last message applied in it, so the messages settled are, per shard, those sent with a
 * sequence at or below it. Sampled every second; the count is a step function between samples.
 */
export class SettledRate {
  /** Per shard, the sequences of its messages in the stream, ascending. */
  private readonly sequences = new Map<string, bigint[]>();
  private readonly samples: { atMs: number; settled: number; sent: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    messages: readonly { shard: string; seq: bigint }[],
    private readonly readWatermarks: () => Promise<Map<string, bigint> | undefined>,
    private readonly sentSoFar: () => number,
    private readonly sinceStream: () => number,
  ) {
    for (const m of messages) {
      if (m.seq === 0n) continue;
      let list = this.sequences.get(m.shard);
      if (list === undefined) this.sequences.set(m.shard, (list = []));
      list.push(m.seq);
    }
    for (const list of this.sequences.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Messages of the stream settled according to these watermarks (duplicates in the stream count once). */
  settledAt(watermarks: Map<string, bigint>): number {
    let total = 0;
    for (const [shard, list] of this.sequences) {
      const w = watermarks.get(shard) ?? 0n;
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]! <= w) lo = mid + 1;
        else hi = mid;
      }
      total += lo;
    }
    return total;
  }

  get total(): number {
    let n = 0;
    for (const list of this.sequences.values()) n += list.length;
    return n;
  }

  start(intervalMs = 1000): void {
    this.samples.push({ atMs: 0, settled: 0, sent: 0 });
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      const atMs = this.sinceStream();
      const sent = this.sentSoFar();
      void this.readWatermarks()
        .then((w) => {
          if (w !== undefined) this.samples.push({ atMs, settled: this.settledAt(w), sent });
        })
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Settled count at `ms`: the last sample at or before it (the watermarks only grow, except after a rollback, which the run repairs). */
  private at(ms: number): { settled: number; sent: number } {
    let best = this.samples[0] ?? { atMs: 0, settled: 0, sent: 0 };
    for (const s of this.samples) if (s.atMs <= ms && s.atMs >= best.atMs) best = s;
    return best;
  }

  report(absences: readonly NodeAbsence[], settledMs: number, offeredPerS: number): RingThroughput {
    // Until the last message settled: the first sample with every message settled (the run's
    // settledMs comes only after the last fault, which may be long after).
    const total = this.total;
    const end = this.samples.find((x) => x.settled >= total)?.atMs ?? (Number.isFinite(settledMs) ? settledMs : (this.samples.at(-1)?.atMs ?? 0));
    const overallPerS = end > 0 ? (this.at(end).settled * 1000) / end : 0;
    const list: AbsenceThroughput[] = absences.map((a) => {
      const from = this.at(a.fromMs);
      const to = this.at(a.toMs);
      const seconds = (a.toMs - a.fromMs) / 1000;
      return {
        kind: a.kind,
        node: a.node,
        fromS: Math.round(a.fromMs / 100) / 10,
        seconds: Math.round(seconds * 10) / 10,
        settled: to.settled - from.settled,
        settledPerS: seconds > 0 ? Math.round((to.settled - from.settled) / seconds) : 0,
        backlogBefore: Math.max(0, from.sent - from.settled),
        backlogAfter: Math.max(0, to.sent - to.settled),
      };
    });
    // Time with a node away within [0, end], and what settled meanwhile (absences never overlap: faults run one at a time).
    let awayMs = 0;
    let awaySettled = 0;
    for (const a of absences) {
      const from = Math.min(a.fromMs, end);
      const to = Math.min(a.toMs, end);
      if (to <= from) continue;
      awayMs += to - from;
      awaySettled += this.at(to).settled - this.at(from).settled;
    }
    const totalSettled = this.at(end).settled;
    const presentMs = end - awayMs;
    return {
      overallPerS: Math.round(overallPerS),
      nodeAwayPerS: awayMs > 0 ? Math.round((awaySettled * 1000) / awayMs) : 0,
      nodeAwaySeconds: Math.round(awayMs / 100) / 10,
      allNodesPerS: presentMs > 0 ? Math.round(((totalSettled - awaySettled) * 1000) / presentMs) : 0,
      offeredPerS,
      absences: list,
    };
  }
}
