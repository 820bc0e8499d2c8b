import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Structured JSON logs; ids go in fields (`shard`, `seq`, `jobId`), never in the text. */
export function createLogger(options: { app: string; level: string }): Logger {
  return pino({
    name: options.app,
    level: options.level,
    base: { app: options.app, pid: process.pid },
    redact: { paths: ['*.token', '*.password', 'config.dashboard.token', 'authorization', '*.authorization'], censor: '[redacted]' },
    // bigint fields (sequences, ids) would make JSON.stringify throw.
    formatters: { log: (obj) => stringifyBigints(obj) as Record<string, unknown> },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

function stringifyBigints(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(stringifyBigints);
  if (value !== null && typeof value === 'object' && !(value instanceof Error)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = stringifyBigints(v);
    return out;
  }
  return value;
}
