export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { createRedisConnection, createFailFastRedisConnection } from './redis.js';
export { Shutdown, runCloseSteps, type CloseStep } from './shutdown.js';
export { createSettlementQueue, completedJobsRetainedOf, COMPLETED_JOBS_RETAINED_DEFAULT } from './queues.js';
export type { SettlementQueueOptions } from './queues.js';
export { runApp } from './app.js';
export { appHelpText, wantsHelp } from './app-help.js';
export { createProcessMetrics } from './process-metrics.js';
export type { AppContext } from './app.js';
export { startHeartbeat, encodeHeartbeat, decodeHeartbeat } from './heartbeat.js';
// Defined in libs/domain (redis-keys.ts); still exported here for bench/, which imports it from runtime.
export { heartbeatPattern } from '@settlement/domain';
export type { Heartbeat } from './heartbeat.js';
export { ChangedUsers, hourOf, HOUR_MS } from './changed-users.js';
export { announceJobsDone, listenJobsDone } from './jobs-done.js';
export { renderTable } from './text-table.js';
