export * from './domain-error.js';
export * from './money.js';
export * from './catalog.js';
export * from './messages.js';
export * from './wire.js';
export * from './effects.js';
export * from './balances.js';
export * from './job.js';
