export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { createRedisConnection, createFailFastRedisConnection } from './redis.js';
export { Shutdown } from './shutdown.js';
export { createSettlementQueue } from './queues.js';
export type { SettlementQueueOptions } from './queues.js';
export { runApp } from './app.js';
export type { AppContext } from './app.js';
