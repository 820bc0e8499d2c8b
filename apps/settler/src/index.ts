export { startSettler, lastEnqueuedKey } from './settler.js';
export type { StartSettlerOptions, RunningSettler, ShardStatus } from './settler.js';
export { ShardSettler, CHAIN_SCAN_JOBS_MAX } from './shard-settler.js';
export type { JobOutcome, ShardSettlerDeps, ShardSettlerSettings } from './shard-settler.js';
export { ShutdownRequestedError } from './shutdown-requested-error.js';
export { classifyError, isTransient, backoffDelayMs } from './retry.js';
