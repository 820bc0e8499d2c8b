/** Where the tests' Cassandra/ScyllaDB and Redis are, as decided once by the global setup. */
export interface StackEndpoints {
  readonly scyllaHosts: string[];
  readonly redisUrl: string;
  readonly source: 'env' | 'testcontainers' | 'local';
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
  }
}
