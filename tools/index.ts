/** Tooling shared by the benchmark, the chaos run and the demo launcher. */
export { ChildApp, ROOT } from './proc/child-app.js';
export type { ChildAppOptions } from './proc/child-app.js';
export { startLocalCassandra, stopLocalCassandra, localCassandraStatus, readPid, portAnswers, isProcessAlive } from './stack/cassandra.js';
export type { LocalCassandraOptions } from './stack/cassandra.js';
export { LocalRing, RingError, RING_ERROR_CODES, RING_NODES_MAX, startLocalRing, openLocalRing, stopLocalRing, localRingRuns } from './stack/ring.js';
export type { LocalRingOptions, LocalRingState, RingErrorCode, RingNodeStatus } from './stack/ring.js';
export { ensureRedis } from './stack/redis.js';
export { parseScriptArgs } from './cli/script-args.js';
export { freePort } from './testing/net.js';
export { waitFor } from './testing/wait-for.js';
