/**
 * The chaos run's fault schedule: which kinds of fault exist and when each one is injected,
 * drawn from the run's seeded generator so the same seed gives the same plan.
 */

export const FAULT_KINDS = ['kill-settler', 'kill-ingestor', 'kill-reconciler', 'restart-redis', 'restart-cassandra', 'kill-cassandra', 'pause-settler'] as const;
/** `pause-node`: SIGSTOP of one ring node past the request timeout (ring only, chaos-ring.ts). */
export type FaultKind = (typeof FAULT_KINDS)[number] | 'pause-node';
/** On a ring: kill-cassandra is a kill -9 of one node; no clean restart of the only node; a node paused. */
export const RING_FAULT_KINDS: readonly FaultKind[] = [...FAULT_KINDS.filter((k) => k !== 'restart-cassandra'), 'pause-node'];

/** kill -9 of Cassandra per run, at least (spread over the stream). */
export const DEFAULT_CASSANDRA_KILLS = 3;

/** One planned fault; `at` is a fraction of the stream's expected send time. */
export interface PlannedFault {
  kind: FaultKind;
  at: number;
}

/**
 * The fault plan: which faults, and when (as fractions of the stream's expected send time, in
 * order). Every kind at least once when there are enough faults, kill -9 of Cassandra at least
 * `cassandraKills` times, one in each equal part of the stream so they are spread over it (a
 * kill at the very end, once everything settled, would lose nothing); the rest at random
 * moments. Same seed, same plan.
 */
export function faultPlan(random: () => number, faults: number, kinds: readonly FaultKind[], cassandraKills: number): PlannedFault[] {
  const kills = kinds.includes('kill-cassandra') ? cassandraKills : 0;
  const others = kinds.filter((k) => k !== 'kill-cassandra');
  const rest = Math.max(faults - kills, others.length === 0 ? 0 : Math.min(others.length, faults));
  const plan: PlannedFault[] = [];
  // The other kinds round robin (each once before any twice), in random order.
  const pool: FaultKind[] = others.length === 0 ? ['kill-cassandra'] : Array.from({ length: rest }, (_, i) => others[i % others.length]!);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const span = 0.85;
  for (let i = 0; i < kills; i++) plan.push({ kind: 'kill-cassandra', at: 0.05 + (span * (i + random())) / kills });
  for (const kind of others.length === 0 ? [] : pool) plan.push({ kind, at: 0.05 + random() * span });
  return plan.sort((a, b) => a.at - b.at);
}
