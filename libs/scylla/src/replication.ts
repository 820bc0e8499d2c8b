/** The keyspace's replication as the driver's metadata knows it, and the start-up check on it. */
import type cassandra from 'cassandra-driver';
import { consistencyRefusal, type ConsistencyName } from '@settlement/domain';

export interface Replication {
  readonly strategy: string;
  /** Replicas per request scope: the local data center's count (local_*), or all of them. */
  readonly localReplicas: number;
  readonly totalReplicas: number;
}

/** Reads the keyspace's replication from a connected client's metadata. */
export function replicationOf(client: cassandra.Client, keyspace: string, localDataCenter: string): Replication {
  const meta = (client.metadata.keyspaces as unknown as Record<string, { strategy: string; strategyOptions: Record<string, string> } | undefined>)[keyspace];
  if (meta === undefined) throw new Error(`keyspace ${keyspace} does not exist (run the migrations: npx settle schema)`);
  const options = meta.strategyOptions ?? {};
  if (/SimpleStrategy$/.test(meta.strategy)) {
    const rf = Number(options['replication_factor'] ?? 1);
    return { strategy: meta.strategy, localReplicas: rf, totalReplicas: rf };
  }
  let total = 0;
  for (const [dc, value] of Object.entries(options)) if (dc !== 'class' && /^\d+$/.test(value)) total += Number(value);
  return { strategy: meta.strategy, localReplicas: Number(options[localDataCenter] ?? 0), totalReplicas: total };
}

/**
 * Refuses, with one message naming both settings, a consistency that cannot give
 * read-your-writes for the keyspace's replication; returns the replication otherwise.
 */
export function checkConsistencyFits(client: cassandra.Client, keyspace: string, localDataCenter: string, consistency: ConsistencyName): Replication {
  const replication = replicationOf(client, keyspace, localDataCenter);
  const rf = consistency === 'quorum' ? replication.totalReplicas : consistency === 'local_quorum' || consistency === 'local_one' ? replication.localReplicas : replication.totalReplicas;
  const refusal = consistencyRefusal(consistency, rf);
  if (refusal !== undefined) throw new Error(`Invalid config: ${refusal} (keyspace ${keyspace})`);
  return replication;
}
