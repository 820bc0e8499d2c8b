export { startSettler } from './settler.js';
export type { StartSettlerOptions, RunningSettler } from './settler.js';
export { ShardSettler } from './shard-settler.js';
export { StorageWatch } from './storage-watch.js';
export type { JobOutcome, ShardSettlerDeps, ShardSettlerSettings } from './shard-settler.js';
export { ShutdownRequestedError } from './shutdown-requested-error.js';
export { classifyError, isTransient, backoffDelayMs } from './retry.js';
