/** Where the tests' Cassandra/ScyllaDB and Redis are, as decided once by the global setup. */
export interface StackEndpoints {
  readonly scyllaHosts: string[];
  readonly redisUrl: string;
  readonly source: 'env' | 'testcontainers' | 'local' | 'ring';
  /** Replication factor of test keyspaces when it is not the config's: 3 on a local three-node ring. */
  readonly replicationFactor?: number;
  /** The local ring's folder (source 'ring'), for tests that kill or pause its nodes (openLocalRing). */
  readonly ringDir?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
  }
}
